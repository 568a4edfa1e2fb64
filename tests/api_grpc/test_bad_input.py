"""Bytes that are not a request of the method, and requests with fields tasks.v1 does not define:
INVALID_ARGUMENT with the `taskhub-error-code` trailer, like every other refused input, and nothing
changes (docs/api/grpc.md, "Errors"). Sent as raw bytes over a real channel."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from tasks.models import Task
from tests.api_grpc.helpers import SERVICE, Metadata, fails, ok
from tests.api_grpc.test_errors import field_errors
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Field number 99, wire type varint, value 1: a field no tasks.v1 message defines.
UNKNOWN_99 = b"\x98\x06\x01"
METHODS = {
    "CreateTask": pb.CreateTaskResponse,
    "GetTask": pb.GetTaskResponse,
    "ListTasks": pb.ListTasksResponse,
    "UpdateTask": pb.UpdateTaskResponse,
    "DeleteTask": pb.DeleteTaskResponse,
}
NOT_MESSAGES = {
    "garbage": b"\xff\xff\xff\xff",
    "truncated length": b"\x0a\x05ab",  # field 1 says 5 bytes follow, 2 do
    "bad UTF-8 in a string": b"\x0a\x02\xff\xfe",
    "end-group tag": b"\x0c",
    "field number 0": b"\x00\x01",
}


def raw(channel: grpc.Channel, method: str) -> Any:
    """A callable that sends `bytes` as they are to TaskService/method."""
    return channel.unary_unary(
        f"/{SERVICE}/{method}", request_serializer=lambda data: data, response_deserializer=METHODS[method].FromString
    )


def with_unknown(message: Message, extra: bytes = UNKNOWN_99) -> Message:
    """`message` carrying unknown fields, as a client built from a newer or foreign .proto sends them."""
    message.MergeFromString(extra)
    return message


@pytest.mark.parametrize("payload", list(NOT_MESSAGES.values()), ids=list(NOT_MESSAGES))
@pytest.mark.parametrize("method", list(METHODS))
def test_bytes_that_are_not_a_request_are_invalid_argument(
    channel: grpc.Channel, as_user: Metadata, user: Any, method: str, payload: bytes
) -> None:
    task = TaskFactory(owner=user, title="Keep")

    error, found = fails(raw(channel, method), payload, as_user, code=grpc.StatusCode.INVALID_ARGUMENT)

    # Bytes that do not decode are malformed, as a REST body that is not JSON. One exception: field 1
    # of ListTasksRequest is an int32 (`page_size`), so the length-delimited field 1 of "bad UTF-8 in
    # a string" is a field of another wire type there, which protobuf keeps as an unknown field: a
    # message that decodes, with a field tasks.v1 does not define (invalid input, named "1").
    if (method, payload) == ("ListTasks", NOT_MESSAGES["bad UTF-8 in a string"]):
        assert (found["taskhub-error-code"], error.details()) == ("invalid_input", "The input is not valid.")
        assert set(field_errors(found)) == {"1"}
    else:
        assert found["taskhub-error-code"] == "malformed_request", (found, error.details())
        assert error.details() == "The request is not a valid message of this method's type."
    assert "x-request-id" in found
    assert list(Task.objects.values_list("pk", "title", "version")) == [(task.pk, "Keep", 1)]


def test_bad_bytes_without_credentials_are_unauthenticated_first(channel: grpc.Channel) -> None:
    """Who asks is decided before the request is read, as on REST (401 before a body's 400)."""
    fails(raw(channel, "CreateTask"), b"\xff", code=grpc.StatusCode.UNAUTHENTICATED, error_code="not_authenticated")


def test_unknown_fields_of_a_create_are_refused(stub: Any, as_user: Metadata) -> None:
    request = with_unknown(pb.CreateTaskRequest(title="x"), UNKNOWN_99 + b"\xa0\x06\x02")  # fields 99 and 100

    _, found = fails(
        stub.CreateTask, request, as_user, code=grpc.StatusCode.INVALID_ARGUMENT, error_code="invalid_input"
    )

    assert set(field_errors(found)) == {"99", "100"}
    assert not Task.objects.exists()


def nested_unknowns(task_id: str) -> dict[str, tuple[str, Message]]:
    """Requests whose unknown field sits in a message inside the request, by the path the error names."""
    mask = FieldMask(paths=["title", "due_date"])
    return {
        "task.99": (
            "UpdateTask",
            pb.UpdateTaskRequest(id=task_id, task=with_unknown(pb.Task(title="x")), update_mask=mask),
        ),
        "task.due_date.99": (
            "UpdateTask",
            pb.UpdateTaskRequest(
                id=task_id,
                task=pb.Task(title="x", due_date=with_unknown(Timestamp(seconds=1_900_000_000))),
                update_mask=mask,
            ),
        ),
        "update_mask.99": (
            "UpdateTask",
            pb.UpdateTaskRequest(
                id=task_id, task=pb.Task(title="x"), update_mask=with_unknown(FieldMask(paths=["title"]))
            ),
        ),
        "due_date.99": (
            "CreateTask",
            pb.CreateTaskRequest(title="x", due_date=with_unknown(Timestamp(seconds=1_900_000_000))),
        ),
        "due_before.99": ("ListTasks", pb.ListTasksRequest(due_before=with_unknown(Timestamp(seconds=1)))),
        "99": ("GetTask", with_unknown(pb.GetTaskRequest(id=task_id))),
        "99 ": ("DeleteTask", with_unknown(pb.DeleteTaskRequest(id=task_id))),
    }


@pytest.mark.parametrize("path", list(nested_unknowns("x")))
def test_unknown_fields_anywhere_in_a_request_are_refused(stub: Any, as_user: Metadata, user: Any, path: str) -> None:
    task = TaskFactory(owner=user, title="Keep")
    method, request = nested_unknowns(str(task.pk))[path]

    _, found = fails(
        getattr(stub, method), request, as_user, code=grpc.StatusCode.INVALID_ARGUMENT, error_code="invalid_input"
    )

    assert field_errors(found) == {path.strip(): ["Unknown field: tasks.v1 defines no such number."]}
    assert list(Task.objects.values_list("pk", "title", "version")) == [(task.pk, "Keep", 1)]


def test_valid_bytes_are_served(channel: grpc.Channel, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="Found")
    request = pb.GetTaskRequest(id=str(task.pk)).SerializeToString()

    assert ok(raw(channel, "GetTask"), request, as_user).task.title == "Found"
    assert len(ok(raw(channel, "ListTasks"), b"", as_user).tasks) == 1  # no bytes: every field unset
