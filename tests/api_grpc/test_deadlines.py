"""DEADLINE_EXCEEDED: a gRPC deadline is honoured before the work starts (a call whose deadline has
passed, or passes while it waits for a worker, does nothing) and during the work (a write still waiting
when the deadline passes is not applied; on PostgreSQL its statements get only the time that is left).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.server import Running
from tasks.models import Task
from tests.api_grpc.helpers import (
    Metadata,
    a_call_waits_on_a_lock,
    fails,
    ok,
    row_locked,
    task_writes_blocked,
    wait_until,
)
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)


def rename(task: Task, title: str) -> pb.UpdateTaskRequest:
    return pb.UpdateTaskRequest(id=str(task.pk), task=pb.Task(title=title), update_mask=FieldMask(paths=["title"]))


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_a_call_whose_deadline_has_passed_does_no_work(stub: Any, as_user: Metadata, timeout: float) -> None:
    for _ in range(10):
        fails(
            stub.CreateTask,
            pb.CreateTaskRequest(title="too late"),
            as_user,
            code=grpc.StatusCode.DEADLINE_EXCEEDED,
            timeout=timeout,
        )

    time.sleep(0.3)  # anything the server might still do would be done by now
    assert ok(stub.ListTasks, pb.ListTasksRequest(), as_user).tasks == []
    assert not Task.objects.exists()


def test_a_1ms_deadline_does_no_work_that_outlasts_it(stub: Any, as_user: Metadata) -> None:
    """A 1 ms call may be answered in time (this server can create a task in under 1 ms), so its work is
    made to last longer for sure: writes to the task table wait half a second for another connection.
    Whatever part of the work the server starts, a call past its deadline must not create the task later."""
    ok(stub.ListTasks, pb.ListTasksRequest(), as_user)  # a warm channel and server: the call reaches the work
    with task_writes_blocked():
        for _ in range(10):
            fails(
                stub.CreateTask,
                pb.CreateTaskRequest(title="1 ms"),
                as_user,
                code=grpc.StatusCode.DEADLINE_EXCEEDED,
                timeout=0.001,
            )
        time.sleep(0.5)

    time.sleep(0.5)  # a write that waited for the lock would be committed by now
    assert ok(stub.ListTasks, pb.ListTasksRequest(), as_user).tasks == []
    assert not Task.objects.exists()


def test_a_write_blocked_past_its_deadline_is_not_applied(stub: Any, user: Any, as_user: Metadata) -> None:
    """The deadline is honoured during the work: a write still waiting for a lock when the deadline
    passes must not be applied once the lock is free (the client was told it failed)."""
    task = TaskFactory(owner=user, title="Locked")

    with row_locked(task.pk):
        fails(stub.UpdateTask, rename(task, "Changed"), as_user, code=grpc.StatusCode.DEADLINE_EXCEEDED, timeout=0.5)
        time.sleep(0.5)

    time.sleep(0.5)  # a write that waited for the lock would be committed by now
    task.refresh_from_db()
    assert (task.title, task.version) == ("Locked", 1)
    assert ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), as_user).task.title == "Locked"


def test_a_call_whose_deadline_passes_while_it_waits_for_a_worker_does_no_work(
    start_server: Callable[..., Running], open_channel: Any, user: Any, as_user: Metadata
) -> None:
    running = start_server(workers=1, max_streams=0)  # one thread: no stream threads either
    stub = pb_grpc.TaskServiceStub(open_channel(port=running.port))
    task = TaskFactory(owner=user, title="Locked")

    with row_locked(task.pk):
        busy = stub.UpdateTask.future(rename(task, "After"), metadata=as_user, timeout=10)  # holds the one worker
        assert a_call_waits_on_a_lock()
        fails(
            stub.CreateTask,
            pb.CreateTaskRequest(title="queued too long"),
            as_user,
            code=grpc.StatusCode.DEADLINE_EXCEEDED,
            timeout=0.3,
        )

    assert busy.result().task.title == "After"
    # The single worker takes calls in order: once this one is answered, the expired one was handled.
    assert [t.title for t in ok(stub.ListTasks, pb.ListTasksRequest(), as_user).tasks] == ["After"]
    assert list(Task.objects.values_list("title", flat=True)) == ["After"]


@pytest.mark.postgres
def test_a_call_blocked_by_a_row_lock_ends_at_its_deadline(
    start_server: Callable[..., Running], open_channel: Any, user: Any, as_user: Metadata, caplog: Any
) -> None:
    running = start_server(workers=1, max_streams=0)  # one thread: no stream threads either
    stub = pb_grpc.TaskServiceStub(open_channel(port=running.port))
    task = TaskFactory(owner=user, title="Locked")
    other = TaskFactory(owner=user, title="Free")

    with row_locked(task.pk):
        started = time.monotonic()
        fails(stub.UpdateTask, rename(task, "Changed"), as_user, code=grpc.StatusCode.DEADLINE_EXCEEDED, timeout=1.0)
        elapsed = time.monotonic() - started
        # The statement waiting on the lock was cancelled at the deadline, not at the 5 s statement
        # timeout: the only worker is free again while the lock is still held.
        free = ok(stub.GetTask, pb.GetTaskRequest(id=str(other.pk)), as_user, timeout=1.5)
        freed_after = time.monotonic() - started

    assert 0.9 <= elapsed < 1.5
    assert free.task.title == "Free"
    assert freed_after < 2.0
    # The server itself ended the call DEADLINE_EXCEEDED (its access log line says so).
    assert wait_until(
        lambda: any(
            r.name == "taskhub.access" and r.getMessage() == "/tasks.v1.TaskService/UpdateTask DEADLINE_EXCEEDED"
            for r in caplog.records
        )
    )
    task.refresh_from_db()
    assert (task.title, task.version) == ("Locked", 1)
    # And the shortened statement timeout did not stay on the worker's connection.
    ok(stub.UpdateTask, rename(task, "Changed"), as_user, timeout=30)


@pytest.mark.postgres
def test_a_call_cancelled_while_it_waits_writes_nothing(
    start_server: Callable[..., Running], open_channel: Any, user: Any, as_user: Metadata, caplog: Any
) -> None:
    """The client gives up (or a shutdown cuts the call off) while the update waits for a row lock:
    once the lock is free the server runs no further statement, so nothing is written."""
    running = start_server(workers=1, max_streams=0)  # one thread: no stream threads either
    stub = pb_grpc.TaskServiceStub(open_channel(port=running.port))
    task = TaskFactory(owner=user, title="Locked")

    with row_locked(task.pk):
        call = stub.UpdateTask.future(rename(task, "Changed"), metadata=as_user, timeout=30)
        assert a_call_waits_on_a_lock()
        call.cancel()
    # The lock is gone: the SELECT ... FOR UPDATE the call waited in returns, and its next statement
    # (the UPDATE) finds the call over.
    assert wait_until(
        lambda: any(
            r.name == "taskhub.access" and r.getMessage().startswith("/tasks.v1.TaskService/UpdateTask ")
            for r in caplog.records
        )
    )
    task.refresh_from_db()
    assert (task.title, task.version) == ("Locked", 1)
