"""GetTask's reply on a cache hit, without a model (docs/api/grpc.md, "What a cached GetTask costs").

`tasks.selectors.task_get` reads the task's cache entry (`tasks.cache`: the task's column values with
the row shape in front) and rebuilds a `Task` from it; `converters.task_to_proto` then builds the
message, which grpcio serializes. On the one read the bench times, that rebuilding and re-encoding
cost more than the Redis GET. Here the same entry is read the same way (`core.cache.safe_cache`, so a
cache fault is a miss, an invalidated key is a miss, hits and misses are counted) and:

- the visibility rule of `task_get` is applied to the owner the entry carries;
- the reply is the serialized `GetTaskResponse` this process made the last time it saw exactly this
  entry (`RecentReplies`), or is made from the entry's values directly (no model) and kept.

A reply is kept next to the whole entry it was made from and served only for an equal entry, so it is
exactly as fresh as the cache entry `task_get` would read: a write replaces the entry (tasks.cache),
and the next call sees a different entry and makes a new reply. Everything else (a miss, an entry of
another row shape, a task that is absent) goes through `task_get`, which fills the cache.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

from django.urls.converters import UUIDConverter
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from api_grpc.converters import PRIORITY_TO_PROTO, STATUS_TO_PROTO, task_to_proto
from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from core.cache import safe_cache
from core.types import Actor
from observability import tracing
from tasks.cache import ABSENT, ROW_SHAPE, task_key
from tasks.models import Task
from tasks.selectors import TaskNotFound, task_get

# Where each column sits in a cache entry: entry[0] is the row shape, then the columns in the model's
# order (tasks.cache.task_to_row). ROW_SHAPE names that order, so an entry with our shape has it.
_AT = {field.attname: index for index, field in enumerate(Task._meta.concrete_fields, start=1)}
_ID, _OWNER = _AT["id"], _AT["owner_id"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The one spelling of a task id (tasks.selectors.parse_task_id): Django's UUID path converter's.
_TASK_ID = re.compile(UUIDConverter.regex)


def get_task_reply(*, actor: Actor, task_id: str) -> bytes | pb.GetTaskResponse:
    """The GetTask reply for the actor: serialized bytes on a cache hit, else the message.

    Raises TaskNotFound, like task_get (which it defers to on anything but a hit of this row shape).
    """
    if not _TASK_ID.fullmatch(task_id):
        raise TaskNotFound()  # as parse_task_id: not the one spelling of a task id
    # The id's one spelling is str(UUID(task_id)): the key task_get reads, without making the UUID.
    key = task_key(task_id)  # type: ignore[arg-type]
    if tracing.enabled():  # keep the selector's span (and the cache's) in traces
        with tracing.internal_span("tasks.task_get"):
            entry = safe_cache.get(key)
    else:
        entry = safe_cache.get(key)
    if entry is None or entry == ABSENT or entry[0] != ROW_SHAPE:
        # A miss (task_get rebuilds the entry, one rebuild per key at a time), a missing task, or an
        # entry of another release: the selector decides, as it does on every other read.
        return pb.GetTaskResponse(task=task_to_proto(task_get(actor=actor, task_id=task_id)))
    if not (actor.sees_all or entry[_OWNER] == actor.id):
        raise TaskNotFound()
    return recent_replies.reply(task_id, entry)


def task_message(entry: tuple[Any, ...]) -> pb.Task:
    """The Task message of a cache entry: what `task_to_proto(task_from_row(entry[1:]))` makes."""
    at = _AT
    message = pb.Task(
        id=str(entry[_ID]),
        owner_id=entry[_OWNER],
        title=entry[at["title"]],
        description=entry[at["description"]],
        priority=PRIORITY_TO_PROTO[entry[at["priority"]]],
        status=STATUS_TO_PROTO[entry[at["status"]]],
        completed=entry[at["completed"]],
        tags=entry[at["tags"]],
        version=entry[at["version"]],
    )
    for name in ("due_date", "created_at", "updated_at", "completed_at"):
        if (value := entry[at[name]]) is not None:
            set_timestamp(getattr(message, name), value)
    return message


def set_timestamp(field: Timestamp, value: datetime) -> None:
    """`field.FromDatetime(value)` for an aware datetime, without its time tuple and calendar calls."""
    delta = value - _EPOCH
    field.seconds = delta.days * 86_400 + delta.seconds
    field.nanos = delta.microseconds * 1000


class RecentReplies:
    """The serialized replies of the tasks this process served last, each with the entry it was made
    from; bounded (the oldest go first). A reply is served only for an entry equal to its own.

    Dict reads and writes are atomic under the GIL; two threads that make the same reply at once
    both store an equal one.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._replies: dict[str, tuple[tuple[Any, ...], bytes]] = {}
        self._lock = threading.Lock()

    def reply(self, key: str, entry: tuple[Any, ...]) -> bytes:
        kept = self._replies.get(key)
        if kept is not None and kept[0] == entry:
            return kept[1]
        reply = pb.GetTaskResponse(task=task_message(entry)).SerializeToString()
        with self._lock:
            self._replies.pop(key, None)
            if len(self._replies) >= self.size:
                del self._replies[next(iter(self._replies))]
            self._replies[key] = (entry, reply)
        return reply

    def clear(self) -> None:
        with self._lock:
            self._replies.clear()


recent_replies = RecentReplies()


def serialize_reply(message: bytes | Message) -> bytes:
    """The response serializer of GetTask: stored bytes as they are, a message serialized."""
    if isinstance(message, bytes):
        return message
    return message.SerializeToString()
