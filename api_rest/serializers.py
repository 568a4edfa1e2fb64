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

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_simplejwt.serializers import PasswordField, TokenBlacklistSerializer

from api_rest.auth import TokenObtainSerializer, TokenRefreshSerializer
from tasks.models import (
    MAX_DESCRIPTION_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TAGS_SENT,
    MAX_TITLE_LENGTH,
    Priority,
    Status,
    Task,
    parse_aware_datetime,
)

PRIORITY_NAMES = {int(p): p.label for p in Priority}


# The white space Python's str.strip() removes, spelled out: `\s` means other sets in other regex
# dialects (ECMA 262's has U+FEFF and lacks U+001C-U+001F and U+0085).
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A character that is neither white space nor NUL (refused in every string by DRF: PostgreSQL cannot store it).
_SOLID = rf"[^\x00{_SPACE}]"


def trimmed_length_pattern(maximum: int) -> str:
    """A JSON Schema pattern for "1 to `maximum` characters once surrounding white space is trimmed"
    (docs/domain.md, "The task"), without NUL: a raw length limit would be false, as "  x  " is the
    title "x"."""
    return rf"^[{_SPACE}]*{_SOLID}(?:[^\x00]{{0,{maximum - 2}}}{_SOLID})?[{_SPACE}]*$"


# Not blank and without NUL (refused in every string by DRF; PostgreSQL cannot store it): DRF trims
# these fields, and a blank value is refused.
NOT_BLANK_PATTERN = rf"^[^\x00]*{_SOLID}[^\x00]*$"


class NoNullCharacters(RegexValidator):
    """DRF's own NUL check as a RegexValidator, which drf-spectacular writes into the schema as a pattern."""

    regex = r"^[^\x00]*\Z"
    message = "Null characters are not allowed."
    code = "null_characters_not_allowed"


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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [
            NoNullCharacters() if isinstance(v, ProhibitNullCharactersValidator) else v for v in self.validators
        ]

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class DomainCheckedField(serializers.Field):
    """A field of a task whose value rules (lengths, NUL, surrogates, how many tags) are the domain's
    (`tasks.models`), so this serializer checks only its type. The domain checks them after the role
    and the expected version, as it does for GraphQL and gRPC: a viewer's over-long title is 403 and a
    stale one 412 on every protocol (RFC 9110 §13.2.1: preconditions before the content). The
    validators stay on the field, not run, for the OpenAPI document (`maxItems`)."""

    def run_validators(self, value: Any) -> None:
        return None


def _trimmed_string(maximum: int, description: str) -> dict[str, Any]:
    """The schema of a string the domain trims before it measures it. Wrapped in `allOf` so that
    drf-spectacular adds neither the field's raw `max_length` (a bound of the work, not the rule) nor
    a blank alternative (`allow_blank` only lets a blank value reach the domain, which refuses it);
    `api_rest.schema.postprocess` unwraps it."""
    return {
        "allOf": [{"type": "string", "minLength": 1, "pattern": trimmed_length_pattern(maximum)}],
        "description": description,
    }


@extend_schema_field(
    {
        "allOf": [{"type": "string", "maxLength": MAX_DESCRIPTION_LENGTH, "pattern": r"^[^\x00]*$"}],
        "description": f"Kept as sent, blank allowed; at most {MAX_DESCRIPTION_LENGTH} characters.",
    }
)
class DescriptionField(DomainCheckedField, StrictCharField):
    """The description, kept as sent (no trimming); blank is allowed."""


@extend_schema_field(_trimmed_string(MAX_TITLE_LENGTH, f"Trimmed first, then 1 to {MAX_TITLE_LENGTH} characters."))
class TitleField(DomainCheckedField, StrictCharField):
    """The title: the domain trims it, then checks its length and that it is not blank."""


@extend_schema_field(_trimmed_string(MAX_TAG_LENGTH, f"Trimmed and lowercased, then 1 to {MAX_TAG_LENGTH} characters."))
class TagField(DomainCheckedField, StrictCharField):
    """One tag as sent; the domain trims, lowercases and measures it."""


@extend_schema_field({"allOf": [{"type": "string", "pattern": NOT_BLANK_PATTERN}]})
class NotBlankField(StrictCharField):
    """A string DRF trims and refuses when blank (a username, a token)."""


class StrictPasswordField(PasswordField, StrictCharField):
    """A password exactly as sent, a JSON string only: surrounding spaces are part of it (simplejwt's
    field trimmed them, so such a password could never log in)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, **kwargs)


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
    """ISO 8601 with a time zone offset, as a JSON string, by the domain's one rule
    (`tasks.models.parse_aware_datetime`): a naive time is refused rather than guessed, and text naming
    no time (day 30 of February) too."""

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str):
            self.fail("invalid", format="ISO 8601 with an offset")
        try:
            return parse_aware_datetime(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class StrictInput:
    """A serializer mixin: a body field the serializer does not know is an error, never ignored."""

    fields: Any

    def to_internal_value(self, data: Any) -> Any:
        writable = {name for name, field in self.fields.items() if not field.read_only}
        if isinstance(data, dict) and (unknown := sorted(set(data) - writable)):
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class TagListField(DomainCheckedField, serializers.ListField):
    """The tags as sent: a list of strings; how many is the domain's rule (`DomainCheckedField`)."""


class TaskInputSerializer(StrictInput, serializers.Serializer[dict[str, Any]]):
    """Create (POST), replace (PUT) and, with partial=True, update (PATCH)."""

    # Trimmed, then measured (docs/domain.md); a blank title reaches the domain, which names the rule.
    title = TitleField(max_length=MAX_TITLE_LENGTH, allow_blank=True, trim_whitespace=True)
    description = DescriptionField(
        max_length=MAX_DESCRIPTION_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        required=False,
    )
    priority = StrictChoiceField(choices=[p.label for p in Priority], required=False)
    status = StrictChoiceField(choices=Status.values, required=False)
    completed = StrictBooleanField(required=False)
    due_date = AwareDateTimeField(allow_null=True, required=False)
    tags = TagListField(
        child=TagField(allow_blank=True, trim_whitespace=False, max_length=MAX_TAG_LENGTH + 100),
        max_length=MAX_TAGS_SENT,
        required=False,
        help_text=f"At most {MAX_TAGS_SENT} sent; duplicates (after trimming and lowercasing) are dropped, "
        f"and at most {MAX_TAGS} may remain.",
    )


class TokenObtainInputSerializer(StrictInput, TokenObtainSerializer):
    """`POST auth/token`: username and password, JSON strings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.username_field] = NotBlankField(write_only=True)
        self.fields["password"] = StrictPasswordField()


class TokenRefreshInputSerializer(StrictInput, TokenRefreshSerializer):
    """`POST auth/token/refresh`: a refresh token, a JSON string."""

    refresh = NotBlankField()


class TokenRevokeInputSerializer(StrictInput, TokenBlacklistSerializer):
    """`POST auth/token/revoke`: a refresh token, a JSON string."""

    refresh = NotBlankField(write_only=True)


class TaskOutputSerializer(serializers.Serializer[Task]):
    """The task as every REST response shows it (documentation of `task_to_json`)."""

    id = serializers.UUIDField()
    owner = serializers.IntegerField(min_value=1, help_text="The owner's user id.")
    title = serializers.CharField(min_length=1, max_length=MAX_TITLE_LENGTH)
    description = serializers.CharField(allow_blank=True, max_length=MAX_DESCRIPTION_LENGTH)
    priority = serializers.ChoiceField(choices=[p.label for p in Priority])
    status = serializers.ChoiceField(choices=Status.values)
    completed = serializers.BooleanField()
    due_date = serializers.DateTimeField(allow_null=True)
    tags = serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=MAX_TAG_LENGTH), max_length=MAX_TAGS
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField(min_value=1, help_text="Grows by one with every change; the ETag.")


class TaskPageSerializer(serializers.Serializer[Any]):
    results = TaskOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class TokenPairSerializer(serializers.Serializer[Any]):
    """What the token and refresh endpoints answer."""

    access = serializers.CharField(help_text="JWT access token; send as `Authorization: Bearer …`.")
    refresh = serializers.CharField(help_text="JWT refresh token; one use (rotated).")


class ProblemSerializer(serializers.Serializer[Any]):
    """Every REST error: RFC 9457 problem details, `application/problem+json` (docs/api/errors.md)."""

    type = serializers.CharField(help_text="`urn:taskhub:problem:<code>`.")
    title = serializers.CharField(help_text="The name of the HTTP status.")
    status = serializers.IntegerField(min_value=400, max_value=599, help_text="The HTTP status.")
    detail = serializers.CharField(help_text="A sentence safe to show.")
    code = serializers.CharField(help_text="The error code of docs/api/errors.md, e.g. `invalid_input`.")
    request_id = serializers.CharField(required=False, help_text="Equals the `X-Request-ID` header.")
    # The metaclass moves declared fields off the class, so this does not shadow Serializer.errors at run time.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField(), min_length=1),
        required=False,
        help_text="Invalid input: field (nested as `tags.0`) or query parameter → messages.",
    )
    current_version = serializers.IntegerField(
        min_value=1, required=False, help_text="`stale_version`: the task's version now."
    )
    retry_after = serializers.IntegerField(
        min_value=0, required=False, help_text="`rate_limited`: seconds to wait, as `Retry-After`."
    )
