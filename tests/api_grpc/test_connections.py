"""Database connections and the threads that hold them. Like Django around an HTTP request, the
server closes broken or expired connections before and after every call (`close_old_connections`),
so a connection the database dropped between two calls is replaced transparently. Django keeps a
connection per thread, and unary calls run on GRPC_WORKERS threads however many are in progress, so
a server holds at most that many connections for them (docs/api/grpc.md, Limits)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.server import Running
from tests.api_grpc.helpers import Metadata, ok, terminate_other_connections
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)


def server_sessions() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return [pid for (pid,) in cursor.fetchall()]


@pytest.mark.postgres
def test_a_connection_killed_between_calls_is_replaced(
    start_server: Callable[..., Running], open_channel: Any, user: Any, as_user: Metadata
) -> None:
    running = start_server(workers=1, max_streams=0)  # one thread, so both calls use the same connection
    stub = pb_grpc.TaskServiceStub(open_channel(port=running.port))
    TaskFactory(owner=user, title="home task", tags=["home"])
    TaskFactory(owner=user, title="work task", tags=["work"])

    # Reads: they have no retry of their own, unlike the write services; and each asks for another
    # page, so no cache answers it.
    assert [t.title for t in ok(stub.ListTasks, pb.ListTasksRequest(tag="home"), as_user).tasks] == ["home task"]
    before = server_sessions()
    assert before, "the server thread keeps its connection between calls (CONN_MAX_AGE)"

    assert terminate_other_connections() >= 1

    assert [t.title for t in ok(stub.ListTasks, pb.ListTasksRequest(tag="work"), as_user).tasks] == ["work task"]
    after = server_sessions()
    assert after and not set(after) & set(before)  # a new session replaced the killed one
    # And writes too.
    ok(stub.CreateTask, pb.CreateTaskRequest(title="after the kill"), as_user)


def concurrent_calls(method: Any, requests: list[Any], metadata: Metadata) -> list[Any]:
    """Every request sent at once (grpcio's futures), then every answer."""
    calls = [method.future(request, metadata=metadata, timeout=30) for request in requests]
    return [call.result() for call in calls]


def test_unary_calls_run_on_grpc_workers_threads_however_many_are_in_progress(
    start_server: Callable[..., Running], open_channel: Any, user: Any, as_user: Metadata
) -> None:
    before = set(threading.enumerate())
    running = start_server(workers=2, max_streams=3)
    stub = pb_grpc.TaskServiceStub(open_channel(port=running.port))
    TaskFactory(owner=user, title="a task")

    for _ in range(3):
        answers = concurrent_calls(stub.ListTasks, [pb.ListTasksRequest(page_size=n) for n in range(1, 33)], as_user)
        assert [len(answer.tasks) for answer in answers] == [1] * 32

    started = sorted(thread.name for thread in set(threading.enumerate()) - before)
    assert 1 <= len([name for name in started if name.startswith("grpc_")]) <= 2, started
    # No stream was opened, and the streams' threads are started only for streams.
    assert not [name for name in started if name.startswith("grpc-stream_")], started


@pytest.mark.postgres
def test_concurrent_writes_hold_at_most_grpc_workers_connections(
    start_server: Callable[..., Running], open_channel: Any, user: Any, as_user: Metadata
) -> None:
    running = start_server(workers=2)
    stub = pb_grpc.TaskServiceStub(open_channel(port=running.port))
    terminate_other_connections()

    created = concurrent_calls(stub.CreateTask, [pb.CreateTaskRequest(title=f"{n}") for n in range(32)], as_user)

    assert len({answer.task.id for answer in created}) == 32
    # Each thread that ran a call keeps its connection between calls (CONN_MAX_AGE).
    assert 1 <= len(server_sessions()) <= 2
