"""GraphQL output types. Values come straight from the Task model, or from the cached row it is built
from (`TaskRow`); enums are upper case."""

from __future__ import annotations

from enum import Enum
from operator import itemgetter
from typing import Any
from uuid import UUID

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from api_graphql.context import actor_of
from api_graphql.scalars import DateTime
from tasks.cache import task_from_row
from tasks.models import Priority as PriorityRank
from tasks.models import Status as TaskStatus
from tasks.models import Task
from tasks.pagination import cursor_after
from tasks.selectors import ROW_INDEX, task_visible


@strawberry.enum(description="Orders high > medium > low.")
class Priority(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum
class Status(Enum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


PRIORITY_BY_RANK = {int(rank): Priority(rank.label) for rank in PriorityRank}
STATUS_BY_VALUE = {status.value: Status(status.value) for status in TaskStatus}


@strawberry_django.type(Task, name="Task")
class TaskType:
    """A task. `version` grows by one with each change; pass it back as `expectedVersion`."""

    id: strawberry.ID
    owner_id: int = strawberry.field(description="The owner's user id.")
    title: str
    description: str
    completed: bool
    due_date: DateTime | None
    tags: list[str]
    created_at: DateTime
    updated_at: DateTime
    completed_at: DateTime | None
    version: int

    @strawberry.field
    @staticmethod
    def priority(root: Task) -> Priority:
        return PRIORITY_BY_RANK[root.priority]

    @strawberry.field
    @staticmethod
    def status(root: Task) -> Status:
        return STATUS_BY_VALUE[root.status]

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Task], info: strawberry.Info, **kwargs: Any) -> QuerySet[Task]:
        """A safety net: any path that reaches tasks through a QuerySet sees only visible ones."""
        return queryset & task_visible(actor=actor_of(info))


class TaskRow(tuple[Any, ...]):
    """A cached task's row (`tasks.selectors.ROW_INDEX`) read as the model it stands for: each column's
    attribute (and `pk`) gives the very value `Task.from_db` would hold, so the fields of `TaskType`
    and the edge cursors read it like a model, without the cost of building one per task of a page.

    It is cast to `TaskType` (strawberry's `is_type_of` accepts it as it accepts the model). The
    schema's execution context completes it, its results remembered per row, and hands graphql-core
    the model instead (`to_model`) whenever it completes a task field by field."""

    __slots__ = ()

    def to_model(self) -> Task:
        return task_from_row(self)


for _name, _index in ROW_INDEX.items():
    setattr(TaskRow, _name, property(itemgetter(_index)))
# A row keeps the id as its text (tasks.cache.task_to_row); the model holds the UUID.
TaskRow.id = TaskRow.pk = property(lambda row: UUID(row[ROW_INDEX["id"]]))  # type: ignore[attr-defined]
setattr(TaskRow, TYPE_CAST_ATTRIBUTE, TaskType)  # strawberry.cast(TaskType, row), for every row


@strawberry.type
class TaskEdge:
    node: TaskType
    ordering: strawberry.Private[str]
    # The cursor once asked for: a cached page's edges serve every request that reads the page
    # (PageEdges), and an edge's cursor depends on its node and ordering alone.
    encoded_cursor: strawberry.Private[str | None] = None

    # Computed only when asked for: a page of 50 would encode 50 cursors nobody reads.
    @strawberry.field
    def cursor(self) -> str:
        return edge_cursor(self)


def edge_cursor(edge: TaskEdge) -> str:
    cursor = edge.encoded_cursor
    if cursor is None:  # two threads may both encode it: the same text
        cursor = edge.encoded_cursor = cursor_after(edge.node, edge.ordering)  # type: ignore[arg-type]
    return cursor


class PageEdges(list[TaskEdge]):
    """The edges of a cached page: one list per page and process while the page's cache entry is
    unchanged (api_graphql.queries.to_connection), shared by every response that reads the page and
    never changed once made. The execution context keeps in `completed` what each of its selections
    kept for the process makes of it (api_graphql.execution), so a page read again is not completed
    edge by edge again."""

    __slots__ = ("completed",)

    def __init__(self, edges: list[TaskEdge]) -> None:
        super().__init__(edges)
        self.completed: dict[Any, Any] = {}


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    edges: strawberry.Private[list[TaskEdge]]

    @strawberry.field
    def start_cursor(self) -> str | None:
        return edge_cursor(self.edges[0]) if self.edges else None

    @strawberry.field
    def end_cursor(self) -> str | None:
        return edge_cursor(self.edges[-1]) if self.edges else None


@strawberry.type
class TaskConnection:
    edges: list[TaskEdge]
    page_info: PageInfo
