"""Every gRPC row of the error table (docs/api/errors.md), provoked for real, with its status code and its
`taskhub-error-code` trailer; plus request ids, compression and the transport's message-size limit.

(ABORTED for a stale version and both idempotency rows live with their RPCs in test_tasks.py;
DEADLINE_EXCEEDED in test_deadlines.py.)
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from django.test import Client
from django.utils import timezone
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from rest_framework_simplejwt.tokens import AccessToken

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.interceptors import client_address
from api_grpc.server import Running
from core.auth import api_key_create, api_key_revoke
from tasks.models import Task
from tests.api_grpc.helpers import (
    UNKNOWN_ID,
    Metadata,
    a_call_waits_on_a_lock,
    api_key,
    bearer,
    database_unreachable,
    fails,
    ok,
    ok_with_trailers,
    row_locked,
    trailers,
)
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)


def every_rpc(task_id: str) -> list[tuple[str, Any]]:
    return [
        ("CreateTask", pb.CreateTaskRequest(title="x")),
        ("GetTask", pb.GetTaskRequest(id=task_id)),
        ("ListTasks", pb.ListTasksRequest()),
        (
            "UpdateTask",
            pb.UpdateTaskRequest(id=task_id, task=pb.Task(title="x"), update_mask=FieldMask(paths=["title"])),
        ),
        ("DeleteTask", pb.DeleteTaskRequest(id=task_id)),
    ]


def field_errors(found: dict[str, str]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = json.loads(found["taskhub-field-errors"])
    return errors


# -- INVALID_ARGUMENT -----------------------------------------------------------------------------------------


INVALID_CREATES = [
    (pb.CreateTaskRequest(title="   "), {"title"}),
    (pb.CreateTaskRequest(), {"title"}),
    (pb.CreateTaskRequest(title="x" * 201), {"title"}),
    (pb.CreateTaskRequest(title="x", description="d" * 10_001), {"description"}),
    (pb.CreateTaskRequest(title="x", priority=42), {"priority"}),
    (pb.CreateTaskRequest(title="x", status=42), {"status"}),
    (pb.CreateTaskRequest(title="x", status=pb.STATUS_TODO, completed=True), {"completed"}),
    (pb.CreateTaskRequest(title="x", tags=[f"t{n}" for n in range(21)]), {"tags"}),
    (pb.CreateTaskRequest(title="x", tags=["y" * 51]), {"tags"}),
    (pb.CreateTaskRequest(title="x", tags=["  "]), {"tags"}),
]


def test_invalid_create_input(stub: Any, as_user: Metadata, subtests: Any) -> None:
    for request, fields in INVALID_CREATES:
        with subtests.test(msg=str(request)[:80]):
            error, found = fails(
                stub.CreateTask, request, as_user, code=grpc.StatusCode.INVALID_ARGUMENT, error_code="invalid_input"
            )

            assert set(field_errors(found)) == fields
            assert error.details()
            assert not Task.objects.exists()


INVALID_LISTS = [
    (pb.ListTasksRequest(page_size=101), "page_size"),
    (pb.ListTasksRequest(page_size=-5), "page_size"),
    (pb.ListTasksRequest(page_token="not-a-cursor"), "page_token"),
    (pb.ListTasksRequest(ordering=99), "ordering"),
    (pb.ListTasksRequest(status=99), "status"),
    (pb.ListTasksRequest(priority=99), "priority"),
    (pb.ListTasksRequest(tag="t" * 51), "tag"),
]


def test_invalid_list_input(stub: Any, as_user: Metadata, subtests: Any) -> None:
    for request, field in INVALID_LISTS:
        with subtests.test(msg=str(request)[:80]):
            _, found = fails(
                stub.ListTasks, request, as_user, code=grpc.StatusCode.INVALID_ARGUMENT, error_code="invalid_input"
            )

            assert set(field_errors(found)) == {field}
            assert all(isinstance(message, str) for message in field_errors(found)[field])


def test_invalid_update_input(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="Keep")

    _, found = fails(
        stub.UpdateTask,
        pb.UpdateTaskRequest(id=str(task.pk), task=pb.Task(title=""), update_mask=FieldMask(paths=["title"])),
        as_user,
        code=grpc.StatusCode.INVALID_ARGUMENT,
        error_code="invalid_input",
    )

    assert set(field_errors(found)) == {"title"}
    task.refresh_from_db()
    assert (task.title, task.version) == ("Keep", 1)


# A Timestamp outside 0001-01-01..9999-12-31, or with nanos outside 0..999,999,999, is not a time: the
# client's input is wrong, so the answer must be INVALID_ARGUMENT (not INTERNAL) naming the field.
BAD_TIMESTAMPS = [Timestamp(seconds=253_402_300_800), Timestamp(seconds=-62_135_596_801), Timestamp(nanos=-1)]


@pytest.mark.parametrize("stamp", BAD_TIMESTAMPS, ids=["year-10000", "year-0", "negative-nanos"])
@pytest.mark.parametrize("rpc", ["CreateTask", "UpdateTask"])
def test_an_invalid_due_date_is_invalid_argument(
    stub: Any, as_user: Metadata, user: Any, rpc: str, stamp: Timestamp
) -> None:
    task = TaskFactory(owner=user, title="Keep")
    request = {
        "CreateTask": pb.CreateTaskRequest(title="x", due_date=stamp),
        "UpdateTask": pb.UpdateTaskRequest(
            id=str(task.pk), task=pb.Task(due_date=stamp), update_mask=FieldMask(paths=["due_date"])
        ),
    }[rpc]

    _, found = fails(
        getattr(stub, rpc), request, as_user, code=grpc.StatusCode.INVALID_ARGUMENT, error_code="invalid_input"
    )

    assert set(field_errors(found)) == {"due_date"}
    assert list(Task.objects.values_list("title", "version")) == [("Keep", 1)]


@pytest.mark.parametrize("field", ["due_before", "due_after"])
def test_an_invalid_due_filter_is_invalid_argument(stub: Any, as_user: Metadata, field: str) -> None:
    _, found = fails(
        stub.ListTasks,
        pb.ListTasksRequest(**{field: BAD_TIMESTAMPS[0]}),
        as_user,
        code=grpc.StatusCode.INVALID_ARGUMENT,
        error_code="invalid_input",
    )

    assert set(field_errors(found)) == {field}


# -- UNAUTHENTICATED ----------------------------------------------------------------------------------------


def test_every_rpc_needs_credentials(stub: Any, user: Any, subtests: Any) -> None:
    task = TaskFactory(owner=user, title="Safe")
    for rpc, request in every_rpc(str(task.pk)):
        with subtests.test(msg=rpc):
            error, _ = fails(
                getattr(stub, rpc), request, (), code=grpc.StatusCode.UNAUTHENTICATED, error_code="not_authenticated"
            )

            assert error.details()
            assert list(Task.objects.values_list("title", flat=True)) == ["Safe"]


def expired_token(user: Any) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    return str(token)


BAD_CREDENTIALS: dict[str, Callable[[Any], Metadata]] = {
    "bad token": lambda user: (("authorization", "Bearer nonsense"),),
    "empty bearer": lambda user: (("authorization", "Bearer "),),
    "basic": lambda user: (("authorization", "Basic dXNlcjpwYXNz"),),
    "bad signature": lambda user: (("authorization", bearer(user)[0][1][:-3] + "abc"),),
    "expired jwt": lambda user: (("authorization", f"Bearer {expired_token(user)}"),),
    "bad key": lambda user: (("x-api-key", "th_000000000000_wrong"),),
    "garbage key": lambda user: (("x-api-key", "garbage"),),
    "wrong secret": lambda user: (("x-api-key", api_key(user)[0][1][:-2] + "xx"),),
    "expired key": lambda user: api_key(user, expires_at=timezone.now() + timedelta(milliseconds=1)),
}


def test_bad_credentials_are_unauthenticated(stub: Any, user: Any, subtests: Any) -> None:
    for name, credentials in BAD_CREDENTIALS.items():
        with subtests.test(msg=name):
            fails(
                stub.ListTasks,
                pb.ListTasksRequest(),
                credentials(user),
                code=grpc.StatusCode.UNAUTHENTICATED,
                error_code="not_authenticated",
            )


def test_a_revoked_api_key_is_unauthenticated(stub: Any, user: Any) -> None:
    key, raw = api_key_create(user=user, name="soon revoked")
    ok(stub.ListTasks, pb.ListTasksRequest(), (("x-api-key", raw),))

    api_key_revoke(prefix=key.prefix)

    fails(
        stub.ListTasks,
        pb.ListTasksRequest(),
        (("x-api-key", raw),),
        code=grpc.StatusCode.UNAUTHENTICATED,
        error_code="not_authenticated",
    )


# -- PERMISSION_DENIED ---------------------------------------------------------------------------------------


def test_writes_need_a_role_that_writes(stub: Any, viewer: Any, user: Any, subtests: Any) -> None:
    for who, owner, metadata in [
        ("viewer", viewer, bearer(viewer)),
        ("read-only key", user, api_key(user, read_only=True)),
    ]:
        task = TaskFactory(owner=owner, title="Read only")
        for rpc, request in every_rpc(str(task.pk)):
            if rpc in ("GetTask", "ListTasks"):
                ok(getattr(stub, rpc), request, metadata)  # reading is allowed
                continue
            with subtests.test(msg=f"{who} {rpc}"):
                fails(
                    getattr(stub, rpc),
                    request,
                    metadata,
                    code=grpc.StatusCode.PERMISSION_DENIED,
                    error_code="permission_denied",
                )
                task.refresh_from_db()
                assert (task.title, task.version) == ("Read only", 1)
    assert Task.objects.count() == 2


# -- NOT_FOUND -----------------------------------------------------------------------------------------------


def test_another_users_task_is_not_found(stub: Any, as_user: Metadata, other_user: Any, subtests: Any) -> None:
    task = TaskFactory(owner=other_user, title="Theirs")
    unknown = dict(every_rpc(UNKNOWN_ID))
    for rpc, request in every_rpc(str(task.pk)):
        if rpc not in ("GetTask", "UpdateTask", "DeleteTask"):
            continue
        with subtests.test(msg=rpc):
            error, _ = fails(
                getattr(stub, rpc), request, as_user, code=grpc.StatusCode.NOT_FOUND, error_code="not_found"
            )
            # Exactly what an id that does not exist gets, so ids do not leak.
            other, _ = fails(
                getattr(stub, rpc), unknown[rpc], as_user, code=grpc.StatusCode.NOT_FOUND, error_code="not_found"
            )
            assert error.details() == other.details()
    task.refresh_from_db()
    assert (task.title, task.version) == ("Theirs", 1)
    # And the task is not in their list either.
    assert ok(stub.ListTasks, pb.ListTasksRequest(), as_user).tasks == []


def test_garbage_ids_are_not_found(stub: Any, as_user: Metadata, subtests: Any) -> None:
    for task_id in ["not-a-uuid", "", "123", UNKNOWN_ID, "x" * 5000, "6f1c2a5e00004000800000000000040"]:
        for rpc, request in every_rpc(task_id):
            if rpc in ("GetTask", "UpdateTask", "DeleteTask"):
                with subtests.test(msg=f"{rpc} {task_id[:40]!r}"):
                    fails(getattr(stub, rpc), request, as_user, code=grpc.StatusCode.NOT_FOUND, error_code="not_found")


# -- RESOURCE_EXHAUSTED --------------------------------------------------------------------------------------


def test_rate_limited_per_user(stub: Any, user: Any, as_user: Metadata, as_other: Metadata, rate_limits: Any) -> None:
    rate_limits(user=["2/h"])
    ok(stub.ListTasks, pb.ListTasksRequest(), as_user)
    ok(stub.CreateTask, pb.CreateTaskRequest(title="counted"), as_user)

    _, found = fails(
        stub.CreateTask,
        pb.CreateTaskRequest(title="refused"),
        as_user,
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        error_code="rate_limited",
    )

    assert 0 < int(found["retry-after"]) <= 3600
    assert list(Task.objects.values_list("title", flat=True)) == ["counted"]
    ok(stub.ListTasks, pb.ListTasksRequest(), as_other)  # another user has their own counters


def test_the_api_key_and_the_jwt_of_a_user_share_a_limit(stub: Any, user: Any, rate_limits: Any) -> None:
    rate_limits(user=["2/h"])
    ok(stub.ListTasks, pb.ListTasksRequest(), bearer(user))
    ok(stub.ListTasks, pb.ListTasksRequest(), api_key(user))

    fails(stub.ListTasks, pb.ListTasksRequest(), bearer(user), code=grpc.StatusCode.RESOURCE_EXHAUSTED)


def test_rest_and_grpc_count_against_the_same_limit(stub: Any, user: Any, as_user: Metadata, rate_limits: Any) -> None:
    rate_limits(user=["2/h"])
    rest = Client(HTTP_AUTHORIZATION=as_user[0][1])

    assert rest.get("/api/v1/tasks").status_code == 200
    ok(stub.ListTasks, pb.ListTasksRequest(), as_user)
    fails(stub.ListTasks, pb.ListTasksRequest(), as_user, code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert rest.get("/api/v1/tasks").status_code == 429


def test_anonymous_calls_are_rate_limited_per_ip(stub: Any, rate_limits: Any) -> None:
    rate_limits(anon=["1/h"])

    fails(stub.ListTasks, pb.ListTasksRequest(), code=grpc.StatusCode.UNAUTHENTICATED, error_code="not_authenticated")
    _, found = fails(
        stub.ListTasks, pb.ListTasksRequest(), code=grpc.StatusCode.RESOURCE_EXHAUSTED, error_code="rate_limited"
    )
    assert int(found["retry-after"]) > 0


def test_behind_a_trusted_proxy_anonymous_callers_count_by_the_forwarded_address(
    stub: Any, rate_limits: Any, settings: Any
) -> None:
    """With TRUSTED_PROXY_COUNT = 1 (the bundled nginx sets `x-forwarded-for` for gRPC as for HTTP),
    each client behind the proxy has its own counter, shared with REST's; without it the header is
    the client's own claim and is never used."""
    rate_limits(anon=["1/h"])
    settings.TRUSTED_PROXY_COUNT = 1

    def via(address: str) -> Metadata:
        return (("x-forwarded-for", address),)

    fails(stub.ListTasks, pb.ListTasksRequest(), via("203.0.113.7"), code=grpc.StatusCode.UNAUTHENTICATED)
    fails(stub.ListTasks, pb.ListTasksRequest(), via("203.0.113.8"), code=grpc.StatusCode.UNAUTHENTICATED)
    fails(stub.ListTasks, pb.ListTasksRequest(), via("203.0.113.7"), code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert Client(HTTP_X_FORWARDED_FOR="203.0.113.8").get("/api/v1/tasks").status_code == 429

    settings.TRUSTED_PROXY_COUNT = 0  # the peer's address (127.0.0.1), whatever the header says
    fails(stub.ListTasks, pb.ListTasksRequest(), via("203.0.113.9"), code=grpc.StatusCode.UNAUTHENTICATED)
    fails(stub.ListTasks, pb.ListTasksRequest(), via("203.0.113.10"), code=grpc.StatusCode.RESOURCE_EXHAUSTED)


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:127.0.0.1:5555", "127.0.0.1"),
        ("ipv6:%5B::1%5D:33796", "::1"),  # how grpcio spells an IPv6 peer
        ("ipv6:[2001:db8::7]:50051", "2001:db8::7"),
    ],
)
def test_the_peer_address_is_spelled_as_rest_spells_the_client_address(peer: str, address: str) -> None:
    assert client_address({}, peer) == address


def _has_ipv6_loopback() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_an_anonymous_ipv6_caller_shares_its_address_counter_with_rest(
    start_server: Any, rate_limits: Any, settings: Any
) -> None:
    """grpcio spells an IPv6 peer 'ipv6:%5B::1%5D:port': the counter is that of REST's '::1'."""
    rate_limits(anon=["1/h"])
    server = start_server(host="[::1]")
    with grpc.insecure_channel(f"[::1]:{server.port}") as channel:
        stub = pb_grpc.TaskServiceStub(channel)
        fails(stub.ListTasks, pb.ListTasksRequest(), code=grpc.StatusCode.UNAUTHENTICATED)

    assert Client(REMOTE_ADDR="::1").get("/api/v1/tasks").status_code == 429
    assert Client(REMOTE_ADDR="127.0.0.1").get("/api/v1/tasks").status_code == 401


def test_a_message_over_the_receive_limit_is_resource_exhausted(
    stub: Any, as_user: Metadata, settings: Any, user: Any
) -> None:
    limit = settings.GRPC_MAX_RECEIVE_MESSAGE_BYTES
    too_big = pb.CreateTaskRequest(title="big", description="d" * limit)
    assert too_big.ByteSize() > limit

    fails(stub.CreateTask, too_big, as_user, code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert not Task.objects.exists()

    # Just under the limit it reaches the service, which refuses the description (≤ 10,000 chars).
    under = pb.CreateTaskRequest(title="big", description="d" * (limit - 100))
    assert under.ByteSize() <= limit
    _, found = fails(stub.CreateTask, under, as_user, code=grpc.StatusCode.INVALID_ARGUMENT)
    assert set(field_errors(found)) == {"description"}


def test_calls_over_the_concurrency_cap_are_resource_exhausted(
    start_server: Callable[..., Running], open_channel: Any, settings: Any, user: Any
) -> None:
    """The server's cap is GRPC_MAX_CONCURRENT_RPCS + GRPC_MAX_STREAMS: an open stream does not take a
    unary call's place."""
    settings.GRPC_MAX_CONCURRENT_RPCS = 1
    running = start_server(max_streams=1)
    stub = pb_grpc.TaskServiceStub(open_channel(port=running.port))
    task = TaskFactory(owner=user, title="Locked")
    metadata = bearer(user)
    update = pb.UpdateTaskRequest(id=str(task.pk), task=pb.Task(title="After"), update_mask=FieldMask(paths=["title"]))
    stream = stub.WatchTasks(pb.WatchTasksRequest(), metadata=metadata, timeout=30)
    stream.initial_metadata()

    with row_locked(task.pk):
        slow = stub.UpdateTask.future(update, metadata=metadata, timeout=10)
        assert a_call_waits_on_a_lock()
        fails(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), metadata, code=grpc.StatusCode.RESOURCE_EXHAUSTED)

    assert slow.result().task.title == "After"
    assert ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), metadata).task.title == "After"
    stream.cancel()


# -- UNAVAILABLE ---------------------------------------------------------------------------------------------


def test_unavailable_when_the_database_is_unreachable(stub: Any, user: Any, as_user: Metadata) -> None:
    task = TaskFactory(owner=user, title="Safe")
    key = api_key(user)  # not used yet, so not cached: authenticating it needs the database

    with database_unreachable():
        outcomes = [
            fails(getattr(stub, rpc), request, as_user, code=grpc.StatusCode.UNAVAILABLE, error_code="unavailable")
            for rpc, request in every_rpc(str(task.pk))
        ]
        outcomes.append(
            fails(
                stub.ListTasks, pb.ListTasksRequest(), key, code=grpc.StatusCode.UNAVAILABLE, error_code="unavailable"
            )
        )

    for error, _ in outcomes:
        assert "temporarily unavailable" in error.details()
    # Once the database is back, so is the service; nothing was written meanwhile.
    assert ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), as_user).task.title == "Safe"
    ok(stub.ListTasks, pb.ListTasksRequest(), key)
    assert list(Task.objects.values_list("title", flat=True)) == ["Safe"]


# -- INTERNAL ------------------------------------------------------------------------------------------------


def test_an_unexpected_error_is_internal_with_a_generic_message(
    stub: Any, user: Any, as_user: Metadata, caplog: Any
) -> None:
    task = TaskFactory(owner=user)
    # A priority no code path can write: converting the task then fails unexpectedly (KeyError).
    Task.objects.filter(pk=task.pk).update(priority=7)

    error, found = fails(
        stub.GetTask,
        pb.GetTaskRequest(id=str(task.pk)),
        (*as_user, ("x-request-id", "trace-me-500")),
        code=grpc.StatusCode.INTERNAL,
        error_code="internal",
    )

    assert error.details() == "Internal server error."
    assert found["x-request-id"] == "trace-me-500"
    assert set(found) == {"x-request-id", "taskhub-error-code"}
    # The server logged what happened, with its traceback, for the operator.
    logged = [r for r in caplog.records if r.name == "api_grpc.errors"]
    assert logged and logged[0].exc_info and logged[0].exc_info[0] is KeyError
    # A list that meets the same row is INTERNAL too, never UNKNOWN.
    fails(stub.ListTasks, pb.ListTasksRequest(), as_user, code=grpc.StatusCode.INTERNAL, error_code="internal")


# -- request ids ---------------------------------------------------------------------------------------------


def test_the_request_id_is_echoed_in_trailing_metadata(stub: Any, as_user: Metadata) -> None:
    _, found = ok_with_trailers(stub.ListTasks, pb.ListTasksRequest(), (*as_user, ("x-request-id", "client-id-42")))
    assert found["x-request-id"] == "client-id-42"

    _, found = fails(
        stub.GetTask,
        pb.GetTaskRequest(id=UNKNOWN_ID),
        (*as_user, ("x-request-id", "client-id-43")),
        code=grpc.StatusCode.NOT_FOUND,
    )
    assert found["x-request-id"] == "client-id-43"


def test_a_request_id_is_generated_when_absent_or_unsafe(stub: Any, as_user: Metadata) -> None:
    generated = [ok_with_trailers(stub.ListTasks, pb.ListTasksRequest(), as_user)[1]["x-request-id"] for _ in "ab"]
    _, unsafe = ok_with_trailers(stub.ListTasks, pb.ListTasksRequest(), (*as_user, ("x-request-id", "a b" * 100)))
    _, anonymous = fails(stub.ListTasks, pb.ListTasksRequest(), code=grpc.StatusCode.UNAUTHENTICATED)

    ids = [*generated, unsafe["x-request-id"], anonymous["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    assert len(set(ids)) == 4


# -- compression ---------------------------------------------------------------------------------------------


def test_gzip_compressed_requests_are_accepted(open_channel: Any, as_user: Metadata) -> None:
    stub = pb_grpc.TaskServiceStub(open_channel(compression=grpc.Compression.Gzip))
    description = "compressible " * 700

    created = ok(stub.CreateTask, pb.CreateTaskRequest(title="zipped", description=description), as_user).task

    assert Task.objects.get(pk=created.id).description == description
    listed = ok(stub.ListTasks, pb.ListTasksRequest(), as_user, compression=grpc.Compression.Gzip)
    assert [task.id for task in listed.tasks] == [created.id]


def test_trailers_of_a_success_carry_no_error_code(stub: Any, as_user: Metadata) -> None:
    response, call = stub.ListTasks.with_call(pb.ListTasksRequest(), metadata=as_user, timeout=10)

    assert call.code() == grpc.StatusCode.OK
    assert "taskhub-error-code" not in trailers(call)
    assert list(response.tasks) == []
