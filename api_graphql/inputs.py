"""GraphQL inputs, turned into the plain values the domain takes."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import UNSET

from api_graphql.types import Priority, Status


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


@strawberry.input
class TaskFilterInput:
    status: Status | None = UNSET
    priority: Priority | None = UNSET
    completed: bool | None = UNSET
    tag: str | None = UNSET
    due_before: datetime | None = UNSET
    due_after: datetime | None = UNSET
    search: str | None = strawberry.field(default=UNSET, description="Case-insensitive, title or description.")

    def to_filters(self) -> dict[str, Any]:
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in set_fields(self).items()
            if value is not None
        }


@strawberry.input
class TaskCreateInput:
    title: str
    description: str | None = UNSET
    priority: Priority | None = UNSET
    status: Status | None = UNSET
    completed: bool | None = UNSET
    due_date: datetime | None = UNSET
    tags: list[str] | None = UNSET


@strawberry.input(description="Only the fields you set change; `dueDate: null` clears the due date.")
class TaskPatchInput:
    title: str | None = UNSET
    description: str | None = UNSET
    priority: Priority | None = UNSET
    status: Status | None = UNSET
    completed: bool | None = UNSET
    due_date: datetime | None = UNSET
    tags: list[str] | None = UNSET
