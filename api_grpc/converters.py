"""proto <-> Python for tasks. The domain takes and returns plain values and Task models."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.unknown_fields import UnknownFieldSet

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from core.errors import InvalidInput, MalformedRequest
from tasks.events import EventType, TaskEvent, event_filter
from tasks.models import Priority, Task
from tasks.services import EDITABLE_FIELDS

PRIORITY_TO_PROTO = {
    int(Priority.LOW): pb.PRIORITY_LOW,
    int(Priority.MEDIUM): pb.PRIORITY_MEDIUM,
    int(Priority.HIGH): pb.PRIORITY_HIGH,
}
PRIORITY_FROM_PROTO = {pb.PRIORITY_LOW: "low", pb.PRIORITY_MEDIUM: "medium", pb.PRIORITY_HIGH: "high"}
STATUS_TO_PROTO = {"todo": pb.STATUS_TODO, "in_progress": pb.STATUS_IN_PROGRESS, "completed": pb.STATUS_COMPLETED}
STATUS_FROM_PROTO = {value: name for name, value in STATUS_TO_PROTO.items()}
EVENT_TYPE_TO_PROTO = {
    EventType.CREATED: pb.TASK_EVENT_TYPE_CREATED,
    EventType.UPDATED: pb.TASK_EVENT_TYPE_UPDATED,
    EventType.COMPLETED: pb.TASK_EVENT_TYPE_COMPLETED,
    EventType.DELETED: pb.TASK_EVENT_TYPE_DELETED,
    EventType.GAP: pb.TASK_EVENT_TYPE_GAP,
}
ORDERING_FROM_PROTO = {
    pb.TASK_ORDERING_UNSPECIFIED: "-created_at",
    pb.TASK_ORDERING_CREATED_AT: "created_at",
    pb.TASK_ORDERING_CREATED_AT_DESC: "-created_at",
    pb.TASK_ORDERING_DUE_DATE: "due_date",
    pb.TASK_ORDERING_DUE_DATE_DESC: "-due_date",
    pb.TASK_ORDERING_PRIORITY: "priority",
    pb.TASK_ORDERING_PRIORITY_DESC: "-priority",
}


@dataclass(frozen=True, slots=True)
class Refused:
    """What `decode_request` gives in place of a request whose bytes are refused: the servicer never
    sees it, the interceptor raises `error` once the caller is authenticated (as REST parses a body
    only after authentication)."""

    error: InvalidInput | MalformedRequest


def decode_request(deserialize: Callable[[bytes], Message], data: bytes) -> Message | Refused:
    """The request message of `data`, or Refused: bytes that are not a message of the method's type
    (grpcio would answer INTERNAL, without our trailers), and a message with fields tasks.v1 does not
    define. proto3 keeps unknown fields quietly; taskhub refuses them, as REST refuses unknown body
    fields and GraphQL unknown input fields (docs/api/grpc.md, "Errors")."""
    try:
        message = deserialize(data)
    except Exception:  # DecodeError, bad UTF-8, nesting too deep: the bytes are the client's error
        return Refused(MalformedRequest("The request is not a valid message of this method's type."))
    if unknown := unknown_fields(message):
        return Refused(
            InvalidInput.for_fields({path: ["Unknown field: tasks.v1 defines no such number."] for path in unknown})
        )
    return message


def unknown_fields(message: Message, prefix: str = "") -> list[str]:
    """The paths of the fields `message` and the messages in it carry that their type does not
    define, named by the field names down to them and the unknown number (`task.99`)."""
    unknown = UnknownFieldSet(message)
    # Nearly always empty: then without the comprehension's call.
    found = [f"{prefix}{unknown[index].field_number}" for index in range(len(unknown))] if len(unknown) else []
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        for item in value if descriptor.is_repeated else (value,):
            found += unknown_fields(item, f"{prefix}{descriptor.name}.")
    return found


def _set_time(field: Timestamp, value: datetime | None) -> None:
    if value is not None:
        field.FromDatetime(value)


def _time(field: Timestamp, name: str) -> datetime:
    try:
        return field.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):  # seconds outside years 1-9999, or nanos out of range
        raise InvalidInput.for_fields({name: ["Not a valid timestamp."]}) from None


def task_to_proto(task: Task) -> pb.Task:
    message = pb.Task(
        id=str(task.pk),
        owner_id=task.owner_id,
        title=task.title,
        description=task.description,
        priority=PRIORITY_TO_PROTO[task.priority],
        status=STATUS_TO_PROTO[task.status],
        completed=task.completed,
        tags=task.tags,
        version=task.version,
    )
    _set_time(message.due_date, task.due_date)
    _set_time(message.created_at, task.created_at)
    _set_time(message.updated_at, task.updated_at)
    _set_time(message.completed_at, task.completed_at)
    return message


def _enum(value: int, mapping: Mapping[Any, str], field: str) -> str:
    if value not in mapping:
        raise InvalidInput.for_fields({field: ["Must be a known, specified value."]})
    return mapping[value]


def create_data_from_proto(request: pb.CreateTaskRequest) -> dict[str, Any]:
    """The fields the client set; unset ones take the domain's defaults."""
    data: dict[str, Any] = {"title": request.title}
    if request.description:
        data["description"] = request.description
    if request.priority != pb.PRIORITY_UNSPECIFIED:
        data["priority"] = _enum(request.priority, PRIORITY_FROM_PROTO, "priority")
    if request.status != pb.STATUS_UNSPECIFIED:
        data["status"] = _enum(request.status, STATUS_FROM_PROTO, "status")
    if request.HasField("completed"):
        data["completed"] = request.completed
    if request.HasField("due_date"):
        data["due_date"] = _time(request.due_date, "due_date")
    if request.tags:
        data["tags"] = list(request.tags)
    return data


def changes_from_proto(task: pb.Task, paths: Iterable[str]) -> dict[str, Any]:
    """The changes named by an update mask. An unset due_date in the mask clears it."""
    paths = list(paths)
    if not paths:
        raise InvalidInput.for_fields({"update_mask": ["Name the fields to change."]})
    if unknown := sorted(set(paths) - EDITABLE_FIELDS):
        raise InvalidInput.for_fields({"update_mask": [f"Cannot update: {', '.join(unknown)}."]})
    changes: dict[str, Any] = {}
    for path in paths:
        if path == "priority":
            changes["priority"] = _enum(task.priority, PRIORITY_FROM_PROTO, "priority")
        elif path == "status":
            changes["status"] = _enum(task.status, STATUS_FROM_PROTO, "status")
        elif path == "due_date":
            changes["due_date"] = _time(task.due_date, "due_date") if task.HasField("due_date") else None
        elif path == "tags":
            changes["tags"] = list(task.tags)
        else:
            changes[path] = getattr(task, path)
    return changes


def list_arguments_from_proto(request: pb.ListTasksRequest) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if request.status != pb.STATUS_UNSPECIFIED:
        filters["status"] = _enum(request.status, STATUS_FROM_PROTO, "status")
    if request.priority != pb.PRIORITY_UNSPECIFIED:
        filters["priority"] = _enum(request.priority, PRIORITY_FROM_PROTO, "priority")
    if request.HasField("completed"):
        filters["completed"] = request.completed
    if request.tag:
        filters["tag"] = request.tag
    if request.HasField("due_before"):
        filters["due_before"] = _time(request.due_before, "due_before").isoformat()
    if request.HasField("due_after"):
        filters["due_after"] = _time(request.due_after, "due_after").isoformat()
    if request.search:
        filters["search"] = request.search
    if request.ordering not in ORDERING_FROM_PROTO:
        raise InvalidInput.for_fields({"ordering": ["Must be a known value."]})
    return {
        "filters": filters,
        "ordering": ORDERING_FROM_PROTO[request.ordering],
        "limit": request.page_size or None,
        "cursor": request.page_token or None,
        "mine": request.only_mine,
    }


def watch_arguments_from_proto(request: pb.WatchTasksRequest) -> dict[str, Any]:
    """The keyword arguments of `tasks.events.subscribe` besides the caller: filters and resume point."""
    filters: dict[str, Any] = {"mine": request.only_mine}
    if request.status != pb.STATUS_UNSPECIFIED:
        filters["status"] = _enum(request.status, STATUS_FROM_PROTO, "status")
    if request.priority != pb.PRIORITY_UNSPECIFIED:
        filters["priority"] = _enum(request.priority, PRIORITY_FROM_PROTO, "priority")
    if request.tag:
        filters["tag"] = request.tag
    return {"filters": event_filter(**filters), "after": request.after or None}


def event_to_proto(event: TaskEvent) -> pb.TaskEvent:
    message = pb.TaskEvent(id=event.id, type=EVENT_TYPE_TO_PROTO[event.type])
    if event.task_id is not None:
        message.task_id = str(event.task_id)
    if event.owner_id is not None:
        message.owner_id = event.owner_id
    if event.version is not None:
        message.version = event.version
    message.occurred_at.FromDatetime(event.occurred_at)
    if event.task is not None:
        message.task.CopyFrom(task_to_proto(event.task))
    return message
