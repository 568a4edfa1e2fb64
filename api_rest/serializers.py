"""REST shapes: input parsing (types only; every rule is checked in tasks.services) and output.

Input is as strict as GraphQL and gRPC: a string field takes only a JSON string, a boolean only a JSON
boolean, and every body refuses the fields it does not know (docs/api/rest.md, "The task"). DRF's
own fields would turn `123` into "123" and `"yes"` into true.

Output is a plain function, `task_to_json`, not a ModelSerializer: it costs microseconds per task
instead of hundreds. `TaskOutputSerializer` only describes that shape to the OpenAPI schema, and a
test keeps the two in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework_simplejwt.serializers import PasswordField, TokenBlacklistSerializer

from api_rest.auth import TokenObtainSerializer, TokenRefreshSerializer
from tasks.models import MAX_DESCRIPTION_LENGTH, MAX_TAG_LENGTH, MAX_TAGS_SENT, MAX_TITLE_LENGTH, Priority, Status, Task

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


class StrictCharField(serializers.CharField):
    """A JSON string only: numbers and booleans are refused, not turned into text."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictPasswordField(PasswordField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """One of the names, as a JSON string (DRF compares `str(value)`, so 3 would match "3")."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """`true` or `false` only: DRF's BooleanField would also take "yes", "on", 1, ..."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a time zone offset, as a JSON string; a naive time is rejected rather than guessed."""

    default_error_messages = {"naive": "Include a time zone offset, e.g. 2030-01-31T17:00:00Z."}

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str):
            self.fail("invalid", format="ISO 8601 with an offset")
        parsed = parse_datetime(value)
        if parsed is not None and parsed.tzinfo is None:
            self.fail("naive")
        return super().to_internal_value(value)


class StrictInput:
    """A serializer mixin: a body field the serializer does not know is an error, never ignored."""

    fields: Any

    def to_internal_value(self, data: Any) -> Any:
        writable = {name for name, field in self.fields.items() if not field.read_only}
        if isinstance(data, dict) and (unknown := sorted(set(data) - writable)):
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class TaskInputSerializer(StrictInput, serializers.Serializer[dict[str, Any]]):
    """Create (POST), replace (PUT) and, with partial=True, update (PATCH)."""

    # Trimmed, then measured (docs/domain.md); a blank title reaches the domain, which names the rule.
    title = StrictCharField(max_length=MAX_TITLE_LENGTH, allow_blank=True, trim_whitespace=True)
    description = StrictCharField(
        max_length=MAX_DESCRIPTION_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        required=False,
    )
    priority = StrictChoiceField(choices=[p.label for p in Priority], required=False)
    status = StrictChoiceField(choices=Status.values, required=False)
    completed = StrictBooleanField(required=False)
    due_date = AwareDateTimeField(allow_null=True, required=False)
    tags = serializers.ListField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False, max_length=MAX_TAG_LENGTH + 100),
        max_length=MAX_TAGS_SENT,
        required=False,
    )


class TokenObtainInputSerializer(StrictInput, TokenObtainSerializer):
    """`POST auth/token`: username and password, JSON strings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.username_field] = StrictCharField(write_only=True)
        self.fields["password"] = StrictPasswordField()


class TokenRefreshInputSerializer(StrictInput, TokenRefreshSerializer):
    """`POST auth/token/refresh`: a refresh token, a JSON string."""

    refresh = StrictCharField()


class TokenRevokeInputSerializer(StrictInput, TokenBlacklistSerializer):
    """`POST auth/token/revoke`: a refresh token, a JSON string."""

    refresh = StrictCharField(write_only=True)


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
