"""GraphQL inputs, turned into the plain values the domain takes."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry import UNSET

from api_graphql.scalars import DateTime
from api_graphql.types import Priority, Status
from core.errors import InvalidInput

# The one input field whose null the domain gives a meaning: no due date (docs/domain.md, "Rules").
NULLABLE_FIELDS = frozenset({"due_date"})
NULL_REFUSED = "This field may not be null."


@strawberry.enum(description="Tasks without a due date come last in both directions.")
class TaskOrdering(Enum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    DUE_DATE = "due_date"
    DUE_DATE_DESC = "-due_date"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def set_fields(data: object) -> dict[str, Any]:
    """The fields the client set (strawberry.UNSET dropped), with enums as their domain values."""
    return {name: _plain(value) for name, value in vars(data).items() if value is not UNSET}


def write_fields(data: object) -> dict[str, Any]:
    """The fields of a create or update input the client set. An explicit null is accepted where the
    domain gives it a meaning (`dueDate`) and refused for every other field, each named with the same
    message, as REST refuses it (docs/api/graphql.md, "Mutations")."""
    fields = set_fields(data)
    if refused := [name for name, value in fields.items() if value is None and name not in NULLABLE_FIELDS]:
        raise InvalidInput.for_fields({name: [NULL_REFUSED] for name in refused})
    return fields


@strawberry.input(description="Filters combine with AND. A filter left out or null does not filter.")
class TaskFilterInput:
    status: Status | None = UNSET
    priority: Priority | None = UNSET
    completed: bool | None = UNSET
    tag: str | None = UNSET
    due_before: DateTime | None = UNSET
    due_after: DateTime | None = UNSET
    search: str | None = strawberry.field(default=UNSET, description="Case-insensitive, title or description.")

    def to_filters(self) -> dict[str, Any]:
        """The filters set, times as the text sent (the domain parses them, `api_graphql.scalars`)."""
        return {name: value for name, value in set_fields(self).items() if value is not None}


_NULL_RULE = (
    "null is accepted only for `dueDate` (no due date); for any other field it is refused with BAD_USER_INPUT, "
    "the field named in `extensions.fields`."
)
_DUE_DATE = "With a time zone offset; null: no due date."
_NOT_NULL = "May be left out; null is refused (BAD_USER_INPUT)."


@strawberry.input(description=f"Fields left out take their defaults. {_NULL_RULE}")
class TaskCreateInput:
    title: str
    description: str | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    priority: Priority | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    status: Status | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    completed: bool | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    due_date: DateTime | None = strawberry.field(default=UNSET, description=_DUE_DATE)
    tags: list[str] | None = strawberry.field(default=UNSET, description=_NOT_NULL)


@strawberry.input(description=f"Only the fields you set change. {_NULL_RULE}")
class TaskPatchInput:
    title: str | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    description: str | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    priority: Priority | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    status: Status | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    completed: bool | None = strawberry.field(default=UNSET, description=_NOT_NULL)
    due_date: DateTime | None = strawberry.field(default=UNSET, description=_DUE_DATE)
    tags: list[str] | None = strawberry.field(default=UNSET, description=_NOT_NULL)
