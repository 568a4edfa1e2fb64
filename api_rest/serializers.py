"""REST shapes: input parsing (types only; every rule is checked in tasks.services) and output.

Output is a plain function, `task_to_json`, not a ModelSerializer: it costs microseconds per task
instead of hundreds. `TaskOutputSerializer` only describes that shape to the OpenAPI schema, and a
test keeps the two in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from tasks.models import (
    MAX_DESCRIPTION_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS_SENT,
    MAX_TITLE_LENGTH,
    Priority,
    Status,
    Task,
    parse_aware_datetime,
)

PRIORITY_NAMES = {int(p): p.label for p in Priority}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def task_to_json(task: Task) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "owner": task.owner_id,
        "title": task.title,
        "description": task.description,
        "priority": PRIORITY_NAMES[task.priority],
        "status": task.status,
        "completed": task.completed,
        "due_date": _iso(task.due_date),
        "tags": task.tags,
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
        "completed_at": _iso(task.completed_at),
        "version": task.version,
    }


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a time zone offset, by the domain's one rule (`tasks.models.parse_aware_datetime`):
    a naive time is refused rather than guessed, and text naming no time (day 30 of February) too."""

    def to_internal_value(self, value: Any) -> datetime:
        try:
            return parse_aware_datetime(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class TaskInputSerializer(serializers.Serializer[dict[str, Any]]):
    """Create (POST), replace (PUT) and, with partial=True, update (PATCH)."""

    # Trimmed, then measured (docs/domain.md); a blank title reaches the domain, which names the rule.
    title = serializers.CharField(max_length=MAX_TITLE_LENGTH, allow_blank=True, trim_whitespace=True)
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        required=False,
    )
    priority = serializers.ChoiceField(choices=[p.label for p in Priority], required=False)
    status = serializers.ChoiceField(choices=Status.values, required=False)
    completed = serializers.BooleanField(required=False)
    due_date = AwareDateTimeField(allow_null=True, required=False)
    tags = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_TAG_LENGTH + 100),
        max_length=MAX_TAGS_SENT,
        required=False,
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict) and (unknown := sorted(set(data) - set(self.fields))):
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class TaskOutputSerializer(serializers.Serializer[Task]):
    """The task as every REST response shows it (documentation of `task_to_json`)."""

    id = serializers.UUIDField()
    owner = serializers.IntegerField(help_text="The owner's user id.")
    title = serializers.CharField()
    description = serializers.CharField()
    priority = serializers.ChoiceField(choices=[p.label for p in Priority])
    status = serializers.ChoiceField(choices=Status.values)
    completed = serializers.BooleanField()
    due_date = serializers.DateTimeField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField(help_text="Grows by one with every change; the ETag.")


class TaskPageSerializer(serializers.Serializer[Any]):
    results = TaskOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class TokenPairSerializer(serializers.Serializer[Any]):
    """What the token and refresh endpoints answer."""

    access = serializers.CharField(help_text="JWT access token; send as `Authorization: Bearer …`.")
    refresh = serializers.CharField(help_text="JWT refresh token; one use (rotated).")
