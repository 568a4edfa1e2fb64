"""GetTask's and ListTasks' replies on a cache hit, without a model (docs/api/grpc.md, "What a
cached GetTask costs").

`tasks.selectors.task_get` reads the task's cache entry (`tasks.cache`: the task's column values with
the row shape in front) and rebuilds a `Task` from it; `converters.task_to_proto` then builds the
message, which grpcio serializes. On the one read the bench times, that rebuilding and re-encoding
cost more than the Redis GET. Here `tasks.selectors.task_get_row` reads the same entry the same way
(`core.cache.safe_cache`: a cache fault or an invalidated key is a miss; hits and misses are counted)
and applies the same visibility rule to the owner the row carries, and the reply is:

- the serialized `GetTaskResponse` this process made the last time it saw exactly this row
  (`recent_replies`, a `core.memo.RenderedMemo`), or
- made from the row's values directly (no model) and kept.

A reply is kept next to the whole row it was made from and served only for an equal row, so it is
exactly as fresh as the cache entry `task_get` would read: a write replaces the entry (tasks.cache),
and the next call sees a different row and makes a new reply. A miss or an entry of another row shape
goes through `task_get`, which reads the database and fills the cache.

ListTasks reads the page as rows (`tasks.selectors.task_list_rows`, with `task_list`'s rules and
errors), and its reply is the page's serialized tasks, kept per page while the page's cache entry is
unchanged (`tasks.cache.CachedPage.rendered`), followed by the next page token's field: protobuf
encodes a message as its fields one after the other, so the two parts are the serialized reply.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from api_grpc.converters import PRIORITY_TO_PROTO, STATUS_TO_PROTO, task_to_proto
from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from core.memo import RenderedMemo
from core.types import Actor
from tasks.cache import PAGE_MEMO_SIZE, task_from_row
from tasks.pagination import MAX_CURSOR_LENGTH, check_ordering, cursor_after
from tasks.selectors import ROW_INDEX, task_get, task_get_row, task_list_rows

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The serialized replies of the tasks this process served last, each kept beside the row it was made
# from and served only for an equal row (core.memo).
recent_replies: RenderedMemo[bytes] = RenderedMemo("grpc.get_task_reply", size=4096)


def get_task_reply(*, actor: Actor, task_id: str) -> bytes | pb.GetTaskResponse:
    """The GetTask reply for the actor: serialized bytes on a cache hit, else the message.

    Raises TaskNotFound, like task_get (which it defers to on a cache miss).
    """
    # The row of a cache hit (never while tracing: then task_get keeps the trace's span tree).
    row = task_get_row(actor=actor, task_id=task_id)
    if row is None:
        # A miss (task_get rebuilds the entry, one rebuild per key at a time) or an entry of another
        # release: the selector reads the database, as on every other read.
        return pb.GetTaskResponse(task=task_to_proto(task_get(actor=actor, task_id=task_id)))
    return recent_replies.get(task_id, row, lambda: pb.GetTaskResponse(task=task_message(row)).SerializeToString())


# The serialized `tasks` field of each cached page this process served last (tasks.cache.CachedPage).
_page_tasks: RenderedMemo[bytes] = RenderedMemo("grpc.list_tasks_page", size=PAGE_MEMO_SIZE)


def list_tasks_reply(*, actor: Actor, **arguments: Any) -> bytes:
    """The serialized ListTasks reply for the actor: `task_list_rows(actor=actor, **arguments)`'s page.

    A page whose reply would pass GRPC_MAX_SEND_MESSAGE_BYTES (100 of the largest valid tasks come to
    ~4.5 MB, over the default 4 MiB that grpcio's clients also accept) is cut short: the tasks that
    fit, and the next page token after the last of them, as AIP-158 lets a page hold fewer results
    than `page_size`. Raises InvalidInput for a bad filter, ordering, limit or cursor, like task_list;
    ListTasks pages forward only, so the cursor of a REST `previous` link is a bad one."""
    page = task_list_rows(actor=actor, forward_only=True, **arguments)
    tasks = page.rendered(_page_tasks, _tasks_field)
    token = page.next_cursor or ""
    limit = settings.GRPC_MAX_SEND_MESSAGE_BYTES - _TOKEN_ROOM
    if len(tasks) > limit:
        tasks, token = _first_tasks_within(page.rows, check_ordering(arguments.get("ordering")), limit)
    return tasks + _next_page_token_field(token)


# Room left for the next page token's field: its tag, its length and a cursor (at most 512 characters).
_TOKEN_ROOM = 1 + 2 + MAX_CURSOR_LENGTH


def _first_tasks_within(rows: tuple[tuple[Any, ...], ...], ordering: str, limit: int) -> tuple[bytes, str]:
    """The `tasks` field of the first rows that fit in `limit` bytes (at least one), and the cursor
    of the page after the last of them."""
    fields: list[bytes] = []
    size = 0
    for row in rows:
        field = _tasks_field((row,))  # a repeated field is its entries one after the other
        if fields and size + len(field) > limit:
            break
        fields.append(field)
        size += len(field)
    return b"".join(fields), cursor_after(task_from_row(rows[len(fields) - 1]), ordering)


def _tasks_field(rows: tuple[tuple[Any, ...], ...]) -> bytes:
    return pb.ListTasksResponse(tasks=[task_message(row) for row in rows]).SerializeToString()


def _next_page_token_field(token: str) -> bytes:
    return pb.ListTasksResponse(next_page_token=token).SerializeToString() if token else b""


def task_message(row: tuple[Any, ...]) -> pb.Task:
    """The Task message of a cached row: what `task_to_proto(task_from_row(row))` makes."""
    at = ROW_INDEX
    message = pb.Task(
        id=str(row[at["id"]]),
        owner_id=row[at["owner_id"]],
        title=row[at["title"]],
        description=row[at["description"]],
        priority=PRIORITY_TO_PROTO[row[at["priority"]]],
        status=STATUS_TO_PROTO[row[at["status"]]],
        completed=row[at["completed"]],
        tags=row[at["tags"]],
        version=row[at["version"]],
    )
    for name in ("due_date", "created_at", "updated_at", "completed_at"):
        if (value := row[at[name]]) is not None:
            set_timestamp(getattr(message, name), value)
    return message


def set_timestamp(field: Timestamp, value: datetime) -> None:
    """`field.FromDatetime(value)` for an aware datetime, without its time tuple and calendar calls."""
    delta = value - _EPOCH
    field.seconds = delta.days * 86_400 + delta.seconds
    field.nanos = delta.microseconds * 1000


def serialize_reply(message: bytes | Message) -> bytes:
    """The response serializer of GetTask and ListTasks: stored bytes as they are, a message serialized."""
    if isinstance(message, bytes):
        return message
    return message.SerializeToString()
