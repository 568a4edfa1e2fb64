"""Property tests (Hypothesis) of the gRPC adapter: whatever a client sends, over a real channel to a
real server, the status is never INTERNAL or UNKNOWN, every refusal carries `taskhub-error-code`,
and a refused call changes nothing. The same for the converters called directly: they raise
InvalidInput or return plain values, nothing else.

Derandomized (the same examples on every run) and bounded, so the file runs in seconds in CI.
"""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api_grpc import converters
from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from core.errors import InvalidInput
from tasks.models import Task
from tests.api_grpc.helpers import SERVICE, TIMEOUT, Metadata, trailers
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)

# The server and the task are shared by the examples of a test (function-scoped fixtures): each
# example compares the table before and after its own call.
PROPERTY = settings(
    derandomize=True,
    database=None,
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SERVER_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
RESPONSES = {
    "CreateTask": pb.CreateTaskResponse,
    "GetTask": pb.GetTaskResponse,
    "ListTasks": pb.ListTasksResponse,
    "UpdateTask": pb.UpdateTaskResponse,
    "DeleteTask": pb.DeleteTaskResponse,
}

# -- strategies: every value the wire can carry ------------------------------------------------------------

# Protobuf strings are UTF-8: any code point but the surrogates. NUL and control characters included.
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
long_text = st.one_of(text, st.integers(195, 260).map(lambda n: "x" * n))
int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
timestamps = st.builds(
    Timestamp,
    seconds=st.one_of(int64, st.integers(-62_135_596_900, 253_402_300_900)),  # the edges of years 1 and 9999
    nanos=st.one_of(int32, st.integers(-2, 1_000_000_001)),
)
enum_numbers = st.one_of(st.integers(0, 7), int32)
tags = st.lists(st.one_of(text, st.sampled_from(["home", " Home ", "", "x" * 51])), max_size=25)
ids = st.one_of(text, st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()))
paths = st.lists(
    st.sampled_from(["title", "description", "priority", "status", "completed", "due_date", "tags", "id", "version"]),
    max_size=4,
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def message(cls: type[Message], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    """Messages of `cls` with any subset of `fields` set (None leaves a field unset)."""
    return st.fixed_dictionaries({}, optional={name: s for name, s in fields.items()}).map(
        lambda values: cls(**{name: value for name, value in values.items() if value is not None})
    )


creates = message(
    pb.CreateTaskRequest,
    title=long_text,
    description=text,
    priority=enum_numbers,
    status=enum_numbers,
    completed=st.booleans(),
    due_date=timestamps,
    tags=tags,
)
lists = message(
    pb.ListTasksRequest,
    page_size=int32,
    page_token=text,
    ordering=enum_numbers,
    status=enum_numbers,
    priority=enum_numbers,
    completed=st.booleans(),
    tag=long_text,
    due_before=timestamps,
    due_after=timestamps,
    search=long_text,
    only_mine=st.booleans(),
)
task_messages = message(
    pb.Task,
    title=long_text,
    description=text,
    priority=enum_numbers,
    status=enum_numbers,
    completed=st.booleans(),
    due_date=timestamps,
    tags=tags,
)


# -- the property --------------------------------------------------------------------------------------------


def snapshot() -> list[tuple[Any, ...]]:
    return list(Task.objects.order_by("pk").values_list("pk", "title", "description", "tags", "due_date", "version"))


def send(channel: grpc.Channel, metadata: Metadata, method: str, request: bytes) -> grpc.StatusCode:
    """Send raw bytes; a refusal must be a client error with our trailer and must change nothing.
    Returns the call's status (OK when it succeeded)."""
    before = snapshot()
    rpc = channel.unary_unary(
        f"/{SERVICE}/{method}", request_serializer=lambda data: data, response_deserializer=RESPONSES[method].FromString
    )
    try:
        rpc(request, metadata=metadata, timeout=TIMEOUT)
    except grpc.RpcError as error:
        found = trailers(error)
        assert error.code() not in SERVER_FAULTS, (method, request, error.code(), error.details(), found)
        if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            assert "taskhub-error-code" in found, (method, request, error.code(), found)
        assert snapshot() == before, (method, request, error.code())
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.fixture
def task(user: Any) -> Task:
    return TaskFactory(owner=user, title="Keep", tags=["home"])  # type: ignore[no-any-return]


@PROPERTY
@given(method=st.sampled_from(list(RESPONSES)), payload=st.binary(max_size=120))
def test_arbitrary_bytes(channel: grpc.Channel, as_user: Metadata, task: Task, method: str, payload: bytes) -> None:
    send(channel, as_user, method, payload)


@PROPERTY
@given(request=creates)
def test_arbitrary_creates(channel: grpc.Channel, as_user: Metadata, task: Task, request: Message) -> None:
    send(channel, as_user, "CreateTask", request.SerializeToString())


@PROPERTY
@given(request=lists)
def test_arbitrary_lists(channel: grpc.Channel, as_user: Metadata, task: Task, request: Message) -> None:
    send(channel, as_user, "ListTasks", request.SerializeToString())


RETITLE = pb.Task(title="Changed")


@PROPERTY
@given(
    own=st.booleans(),
    other_id=ids,
    changes=task_messages,
    mask=paths,
    expected_version=optional(st.one_of(st.integers(0, 3), int64)),
    method=st.sampled_from(["UpdateTask", "GetTask", "DeleteTask"]),
)
# Calls that succeed, or are stale, whatever Hypothesis draws.
@example(own=True, other_id="", changes=RETITLE, mask=["title"], expected_version=1, method="UpdateTask")
@example(own=True, other_id="", changes=RETITLE, mask=["title"], expected_version=2, method="UpdateTask")
@example(own=True, other_id="", changes=pb.Task(), mask=[], expected_version=1, method="DeleteTask")
@example(own=True, other_id="", changes=pb.Task(), mask=[], expected_version=None, method="DeleteTask")
@example(own=True, other_id="", changes=pb.Task(), mask=[], expected_version=2, method="DeleteTask")
def test_arbitrary_updates_gets_and_deletes(
    channel: grpc.Channel,
    as_user: Metadata,
    user: Any,
    own: bool,
    other_id: str,
    changes: Message,
    mask: list[str],
    expected_version: int | None,
    method: str,
) -> None:
    """Each example has its own task, at version 1 (one shared task was deleted by the first delete
    and the examples after it ran on an empty table): a refused call leaves the task as it was
    (`send`), and a call that succeeds did what it says, on the task, at its version."""
    Task.objects.all().delete()
    task = TaskFactory(owner=user, title="Keep", tags=["home"])
    task_id = str(task.pk) if own else other_id
    if method == "UpdateTask":
        request: Message = pb.UpdateTaskRequest(
            id=task_id, task=changes, update_mask=FieldMask(paths=mask), expected_version=expected_version
        )
    elif method == "DeleteTask":
        request = pb.DeleteTaskRequest(id=task_id, expected_version=expected_version)
    else:
        request = pb.GetTaskRequest(id=task_id)
    before = snapshot()

    status = send(channel, as_user, method, request.SerializeToString())

    current = expected_version in (None, 1)
    if own and method == "GetTask":
        assert status == grpc.StatusCode.OK, status
    if own and method == "DeleteTask":  # nothing else to refuse
        assert status == (grpc.StatusCode.OK if current else grpc.StatusCode.ABORTED), status
    if own and method == "UpdateTask" and changes == RETITLE and mask == ["title"]:
        assert status == (grpc.StatusCode.OK if current else grpc.StatusCode.ABORTED), status
    if status != grpc.StatusCode.OK:
        return
    assert own, (method, task_id)  # no other id names the task
    if method == "DeleteTask":
        assert expected_version in (None, 1), expected_version
        assert not Task.objects.exists()
    elif method == "UpdateTask":
        assert expected_version in (None, 1), expected_version
        row = Task.objects.get()
        # One change, one version (a call that changes no value may keep version 1).
        if snapshot()[0][:-1] != before[0][:-1]:
            assert row.version == 2, row.version
        assert row.version in (1, 2), row.version
        if changes == RETITLE and mask == ["title"]:
            assert (row.title, row.version) == ("Changed", 2)
    else:
        assert snapshot() == before


@PROPERTY
@given(create=creates, listing=lists, changes=task_messages, mask=paths)
def test_the_converters_raise_only_invalid_input(
    create: Message, listing: Message, changes: Message, mask: list[str]
) -> None:
    for convert in (
        lambda: converters.create_data_from_proto(create),
        lambda: converters.list_arguments_from_proto(listing),
        lambda: converters.changes_from_proto(changes, mask),
    ):
        with contextlib.suppress(InvalidInput):
            convert()


@PROPERTY
@given(create=creates, listing=lists, changes=task_messages, mask=paths)
def test_every_message_of_tasks_v1_decodes_as_itself(
    create: Message, listing: Message, changes: Message, mask: list[str]
) -> None:
    """Whatever its values, a message a tasks.v1 client can build is never refused as undecodable or
    as carrying unknown fields: the request decodes to the message that was sent."""
    update = pb.UpdateTaskRequest(id="x", task=changes, update_mask=FieldMask(paths=mask), expected_version=1)
    for request in (create, listing, update):
        decoded = converters.decode_request(type(request).FromString, request.SerializeToString())
        assert decoded == request, (request, decoded)
