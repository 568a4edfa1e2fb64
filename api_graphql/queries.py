"""Query resolvers: each calls one selector.

`task` and the task lists read cached rows where the selectors offer them (`task_get_row`,
`task_list_rows`) and hand them on as `TaskRow`s, which `api_graphql.execution` completes from a
per-row memo instead of building a model per task (docs/api/graphql.md, "What a request costs")."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry

from api_graphql.context import actor_of, note_rows
from api_graphql.inputs import TaskFilterInput, TaskOrdering
from api_graphql.types import PageEdges, PageInfo, TaskConnection, TaskEdge, TaskRow, TaskType
from core.memo import RenderedMemo
from tasks.cache import PAGE_MEMO_SIZE, CachedPage
from tasks.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from tasks.selectors import task_get, task_get_row, task_list_rows, task_search

# The edges of each cached page, made once while the page's cache entry is unchanged (its slot names
# its parameters, the ordering included).
_PAGE_EDGES: RenderedMemo[PageEdges] = RenderedMemo("graphql.page_edges", size=PAGE_MEMO_SIZE)


def _row_edges(ordering: str, rows: tuple[tuple[Any, ...], ...]) -> PageEdges:
    return PageEdges([TaskEdge(node=TaskRow(row), ordering=ordering) for row in rows])  # type: ignore[arg-type]


def to_connection(page: Page | CachedPage, ordering: str) -> TaskConnection:
    """A page of models (`Page`) or of cached rows (`CachedPage`, each row a `TaskRow`) as a connection."""
    edges: list[TaskEdge]
    if isinstance(page, Page):
        edges = [TaskEdge(node=task, ordering=ordering) for task in page.items]  # type: ignore[arg-type]
    else:
        page_edges: PageEdges = page.rendered(_PAGE_EDGES, partial(_row_edges, ordering))
        edges = page_edges
    return TaskConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.next_cursor is not None,
            has_previous_page=page.previous_cursor is not None,
            edges=edges,
        ),
    )


def _task_page(
    info: strawberry.Info,
    filters: TaskFilterInput | None,
    ordering: TaskOrdering,
    first: int | None,
    after: str | None,
    *,
    mine: bool,
) -> TaskConnection:
    page = task_list_rows(
        actor=actor_of(info),
        filters=filters.to_filters() if filters else None,
        ordering=ordering.value,
        limit=first,
        cursor=after,
        mine=mine,
        forward_only=True,  # `after`: a Relay connection pages forward here
    )
    note_rows(info)
    return to_connection(page, ordering.value)


@strawberry.type
class Me:
    id: int
    username: str
    roles: list[str]
    is_staff: bool

    @strawberry.field(description="Only your own tasks, whatever your role ('my tasks').")
    def tasks(
        self,
        info: strawberry.Info,
        filters: TaskFilterInput | None = None,
        ordering: TaskOrdering = TaskOrdering.CREATED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> TaskConnection:
        return _task_page(info, filters, ordering, first, after, mine=True)


@strawberry.type
class Query:
    @strawberry.field(description="One task; null with a NOT_FOUND error when it is not visible to you.")
    def task(self, info: strawberry.Info, id: strawberry.ID) -> TaskType | None:
        actor = actor_of(info)
        # None on a miss, and while tracing (task_get then keeps the trace's one tasks.task_get span).
        row = task_get_row(actor=actor, task_id=id)
        if row is None:
            return task_get(actor=actor, task_id=id)  # type: ignore[return-value]
        note_rows(info)
        return TaskRow(row)  # type: ignore[return-value]

    @strawberry.field(
        description=f"The tasks you may see (managers: everybody's), `first` 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})."
    )
    def tasks(
        self,
        info: strawberry.Info,
        filters: TaskFilterInput | None = None,
        ordering: TaskOrdering = TaskOrdering.CREATED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> TaskConnection:
        return _task_page(info, filters, ordering, first, after, mine=False)

    @strawberry.field(description="Tasks whose title or description contains `query`, case-insensitively.")
    def search_tasks(
        self, info: strawberry.Info, query: str, first: int | None = None, after: str | None = None
    ) -> TaskConnection:
        page = task_search(actor=actor_of(info), query=query, limit=first, cursor=after, forward_only=True)
        return to_connection(page, TaskOrdering.CREATED_AT_DESC.value)

    @strawberry.field(description="Who you are, and your own tasks.")
    def me(self, info: strawberry.Info) -> Me:
        actor = actor_of(info)
        return Me(id=actor.id, username=actor.username, roles=sorted(actor.roles), is_staff=actor.is_staff)
