"""The standard grpc.health.v1 service: SERVING while the database answers, NOT_SERVING while it does
not and from the moment a graceful shutdown starts; and the shutdown itself: new calls UNAVAILABLE,
calls in flight finish within the grace period."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.server import Running, build_server
from tasks.models import Task
from tests.api_grpc.helpers import (
    SERVICE,
    Metadata,
    a_call_waits_on_a_lock,
    database_unreachable,
    fails,
    ok,
    row_locked,
    wait_until,
)
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def check(health: Any, service: str) -> int:
    status: int = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
    return status


def next_status(watch: Iterator[Any], wanted: int, timeout: float = 5.0) -> bool:
    """Read a Watch stream until it reports `wanted` (the stream's own deadline bounds the wait)."""
    deadline = time.monotonic() + timeout
    for response in watch:
        if response.status == wanted:
            return True
        if time.monotonic() > deadline:
            return False
    return False


@pytest.fixture
def health(channel: grpc.Channel) -> health_pb2_grpc.HealthStub:
    return health_pb2_grpc.HealthStub(channel)


def test_serving_for_the_server_and_the_task_service(health: Any) -> None:
    assert check(health, "") == SERVING
    assert check(health, SERVICE) == SERVING


def test_an_unknown_service_is_not_found(health: Any) -> None:
    with pytest.raises(grpc.RpcError) as info:
        check(health, "no.such.Service")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_follows_the_database(grpc_server: Running, health: Any, stub: Any, as_user: Metadata) -> None:
    assert grpc_server.checker is not None

    with database_unreachable():
        assert grpc_server.checker.check() is False
        assert check(health, "") == NOT_SERVING
        assert check(health, SERVICE) == NOT_SERVING
        fails(stub.ListTasks, pb.ListTasksRequest(), as_user, code=grpc.StatusCode.UNAVAILABLE)

    assert grpc_server.checker.check() is True
    assert check(health, "") == SERVING
    assert check(health, SERVICE) == SERVING
    ok(stub.ListTasks, pb.ListTasksRequest(), as_user)


@pytest.mark.postgres
def test_the_background_check_notices_by_itself(
    start_server: Callable[..., Running], open_channel: Any, settings: Any
) -> None:
    """(PostgreSQL: there the checker's own connection can be cut; an open SQLite file cannot.)"""
    settings.GRPC_HEALTH_CHECK_INTERVAL = 0.1
    running = start_server()
    health = health_pb2_grpc.HealthStub(open_channel(port=running.port))
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
    try:
        assert next_status(watch, SERVING)
        with database_unreachable():
            assert next_status(watch, NOT_SERVING)
        assert next_status(watch, SERVING)
    finally:
        watch.cancel()


def test_graceful_shutdown(
    start_server: Callable[..., Running], open_channel: Any, user: Any, as_user: Metadata
) -> None:
    running = start_server()
    channel = open_channel(port=running.port)
    stub, health = pb_grpc.TaskServiceStub(channel), health_pb2_grpc.HealthStub(channel)
    task = TaskFactory(owner=user, title="Before")
    ok(stub.ListTasks, pb.ListTasksRequest(), as_user)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
    assert next(watch).status == SERVING
    update = pb.UpdateTaskRequest(id=str(task.pk), task=pb.Task(title="After"), update_mask=FieldMask(paths=["title"]))

    with row_locked(task.pk):
        in_flight = stub.UpdateTask.future(update, metadata=as_user, timeout=10)
        assert a_call_waits_on_a_lock()
        stopped = running.shutdown(grace=5)  # returns at once; the grace period runs meanwhile

        # During the grace period: health says NOT_SERVING to its watchers, new calls are refused.
        seen: list[Any] = []
        observer = threading.Thread(target=lambda: seen.append(next(watch).status))
        observer.start()
        observer.join(5)
        assert seen == [NOT_SERVING]
        watch.cancel()  # an open stream would hold the server until the grace period ends
        fails(stub.ListTasks, pb.ListTasksRequest(), as_user, code=grpc.StatusCode.UNAVAILABLE)
        fresh = pb_grpc.TaskServiceStub(open_channel(port=running.port))
        fails(fresh.GetTask, pb.GetTaskRequest(id=str(task.pk)), as_user, code=grpc.StatusCode.UNAVAILABLE)
        with pytest.raises(grpc.RpcError) as info:  # a new health check is a new call: refused too
            check(health, SERVICE)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert not in_flight.done() and not stopped.is_set()

        released = time.monotonic()

    # The call in flight finishes, and the server stops as soon as it has, well within the grace period.
    assert in_flight.result(timeout=5).task.title == "After"
    assert stopped.wait(5)
    assert time.monotonic() - released < 2
    assert Task.objects.get(pk=task.pk).title == "After"


def test_a_call_that_outlasts_the_grace_period_is_cut(
    start_server: Callable[..., Running], open_channel: Any, user: Any, as_user: Metadata, caplog: Any
) -> None:
    running = start_server()
    stub = pb_grpc.TaskServiceStub(open_channel(port=running.port))
    task = TaskFactory(owner=user, title="Before")
    update = pb.UpdateTaskRequest(id=str(task.pk), task=pb.Task(title="After"), update_mask=FieldMask(paths=["title"]))

    with row_locked(task.pk):
        in_flight = stub.UpdateTask.future(update, metadata=as_user, timeout=10)
        assert a_call_waits_on_a_lock()
        started = time.monotonic()
        assert running.shutdown(grace=0.3).wait(5)
        assert time.monotonic() - started < 2

        with pytest.raises(grpc.RpcError) as info:
            in_flight.result(timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    # Its handler thread cannot be interrupted, but once the lock is free it runs no further
    # statement of a call that is over: it ends (its access line is written) and writes nothing.
    assert wait_until(
        lambda: any(
            r.name == "taskhub.access" and r.getMessage().startswith("/tasks.v1.TaskService/UpdateTask ")
            for r in caplog.records
        )
    )
    task.refresh_from_db()
    assert (task.title, task.version) == ("Before", 1)


def test_a_second_server_on_a_taken_port_fails(grpc_server: Running) -> None:
    """`grpc.so_reuseport` is off: two servers never share a port (and split its calls) by accident."""
    with pytest.raises(RuntimeError):
        running = build_server(host="127.0.0.1", port=grpc_server.port, health_enabled=False)
        running.shutdown(0)  # pragma: no cover - only if it wrongly started
