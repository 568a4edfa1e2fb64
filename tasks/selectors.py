"""Reads of tasks. Every read is scoped to what the actor may see, here and nowhere else.

A task the actor may not see is `TaskNotFound`, exactly as a task that does not exist, so ids do not
leak (docs/domain.md).
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.urls.converters import UUIDConverter

from core.errors import InvalidInput, NotFound
from core.types import Actor
from observability import tracing
from observability.tracing import traced
from tasks import cache
from tasks.filters import TaskFilter, normalize_filters
from tasks.models import Task
from tasks.pagination import Page, check_cursor, check_limit, check_ordering, paginate


class TaskNotFound(NotFound):
    default_message = "No task with this id is visible to you."


# The one spelling of a task id: the lower-case, hyphenated UUID every protocol gives out, by the
# very rule of REST's `<uuid:…>` path converter (Django's UUIDConverter).
_TASK_ID = re.compile(UUIDConverter.regex)


def parse_task_id(task_id: UUID | str) -> UUID:
    """An id that is not a task id names no task: TaskNotFound, like any other unknown id. Other
    spellings of the same UUID (upper case, no hyphens, braces, `urn:uuid:`) are not task ids, so
    every protocol answers them alike (docs/domain.md, "Visibility and roles")."""
    if isinstance(task_id, UUID):
        return task_id
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        raise TaskNotFound()
    return UUID(task_id)


def task_visible(*, actor: Actor) -> QuerySet[Task]:
    """The tasks the actor may read: every task for managers and staff, their own for everybody else."""
    queryset = Task.objects.all()
    return queryset if actor.sees_all else queryset.filter(owner_id=actor.id)


def sees(actor: Actor, owner_id: int) -> bool:
    """The visibility rule of one task: its owner sees it, and so does whoever sees all tasks."""
    return actor.sees_all or owner_id == actor.id


@traced("tasks.task_get")
def task_get(*, actor: Actor, task_id: UUID | str) -> Task:
    """One visible task, from the cache when it is there (no query on a hit).

    Raises TaskNotFound.
    """
    pk = parse_task_id(task_id)
    task = cache.task_cached(pk, lambda: Task.objects.filter(pk=pk).first())
    if task is None or not sees(actor, task.owner_id):
        raise TaskNotFound()
    return task


# Where each column sits in a row of `task_get_row` (tasks.cache.task_to_row: the model's column order;
# the id as its text).
ROW_INDEX = {field.attname: index for index, field in enumerate(Task._meta.concrete_fields)}
_OWNER = ROW_INDEX["owner_id"]


def task_get_row(*, actor: Actor, task_id: str) -> tuple[Any, ...] | None:
    """The row of one visible task (its column values, `ROW_INDEX`) when the cache holds it, without
    building a model: for an adapter that renders the row itself. None on a cache miss, and always
    while tracing is on (so a trace keeps `task_get`'s one span): then call `task_get`, which reads
    the database and fills the cache.

    Raises TaskNotFound, as `task_get` does.
    """
    if tracing.enabled():
        return None
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        raise TaskNotFound()  # as parse_task_id; a matching id is already its UUID's one spelling
    row = cache.task_row_cached(task_id)  # type: ignore[arg-type]
    if row is None:
        return None
    if isinstance(row, str) or not sees(actor, row[_OWNER]):  # ABSENT: no such task
        raise TaskNotFound()
    return row


def task_get_for_update(*, actor: Actor, task_id: UUID | str) -> Task:
    """One visible task, read from the database and locked until the transaction ends.

    Must be called inside `transaction.atomic`. Raises TaskNotFound.
    """
    pk = parse_task_id(task_id)
    task = task_visible(actor=actor).select_for_update().filter(pk=pk).first()
    if task is None:
        raise TaskNotFound()
    return task


@traced("tasks.task_list")
def task_list(
    *,
    actor: Actor,
    filters: dict[str, Any] | None = None,
    ordering: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    mine: bool = False,
    forward_only: bool = False,
) -> Page:
    """One page of the visible tasks (or only the actor's own with `mine`), filtered and ordered.

    Filters: status, priority, completed, tag, due_before, due_after, search (tasks.filters).
    Orderings: tasks.pagination.ORDERINGS. Pages come from the cache while no task of the scope
    changes. Raises InvalidInput for a bad filter, ordering, limit or cursor; with `forward_only` (a
    protocol without backward paging), for the cursor of a `previous` link too.
    """
    rows = _page_rows(actor, filters, ordering, limit, cursor, mine, forward_only)
    return Page(
        items=[cache.task_from_row(row) for row in rows.rows],
        next_cursor=rows.next_cursor,
        previous_cursor=rows.previous_cursor,
    )


@traced("tasks.task_list")
def task_list_rows(
    *,
    actor: Actor,
    filters: dict[str, Any] | None = None,
    ordering: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    mine: bool = False,
    forward_only: bool = False,
) -> cache.CachedPage:
    """`task_list`'s page as rows (column values, `ROW_INDEX`), without building a model per task:
    for an adapter that renders rows itself. Same arguments, rules and errors as `task_list`."""
    return _page_rows(actor, filters, ordering, limit, cursor, mine, forward_only)


def _page_rows(
    actor: Actor,
    filters: dict[str, Any] | None,
    ordering: str | None,
    limit: int | None,
    cursor: str | None,
    mine: bool,
    forward_only: bool,
) -> cache.CachedPage:
    filter_values = normalize_filters(filters)
    ordering = check_ordering(ordering)
    limit = check_limit(limit)
    cursor = check_cursor(cursor, ordering, forward_only=forward_only)
    scope = cache.ALL_SCOPE if actor.sees_all and not mine else cache.owner_scope(actor.id)

    def load() -> tuple[list[tuple[Any, ...]], str | None, str | None]:
        owner_id = None if scope == cache.ALL_SCOPE else actor.id
        queryset = task_visible(actor=actor) if owner_id is None else Task.objects.filter(owner_id=owner_id)
        filterset = TaskFilter(filter_values, queryset=queryset, owner_id=owner_id, ordering=ordering)
        if not filterset.is_valid():
            raise InvalidInput.for_fields({name: list(msgs) for name, msgs in filterset.errors.items()})
        page = paginate(filterset.qs, ordering=ordering, limit=limit, cursor=cursor, owner_id=owner_id)
        return [cache.task_to_row(t) for t in page.items], page.next_cursor, page.previous_cursor

    params = [*filter_values.items(), ("ordering", ordering), ("limit", limit), ("cursor", cursor)]
    return cache.page_cached(scope, params, load)


@traced("tasks.task_search")
def task_search(
    *, actor: Actor, query: str, limit: int | None = None, cursor: str | None = None, forward_only: bool = False
) -> Page:
    """Visible tasks whose title or description contains `query`, case-insensitively.

    Every text contains the empty text, so a blank query lists every visible task, exactly like
    the list with a blank `search` filter. A bad `query` is named `query` in the error, as the caller
    gave it, not `search`, the filter that does the work.
    """
    try:
        return task_list(actor=actor, filters={"search": query}, limit=limit, cursor=cursor, forward_only=forward_only)
    except InvalidInput as exc:
        fields = exc.extra.get("fields") or {}
        if "search" not in fields:
            raise
        raise InvalidInput.for_fields(
            {"query" if name == "search" else name: messages for name, messages in fields.items()}
        ) from exc
