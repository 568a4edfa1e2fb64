"""`manage.py grpcserver` as a real process: it serves, and on SIGTERM it shuts down gracefully (health
NOT_SERVING, new calls UNAVAILABLE, the call in flight finishes, open streams end UNAVAILABLE at once)
and exits 0 within the grace period."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from django.conf import settings
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from tasks.models import Task
from tests.api_grpc.helpers import SERVICE, a_call_waits_on_a_lock, bearer, fails, ok, row_locked
from tests.factories import TaskFactory
from tests.live import free_port, test_database_url

pytestmark = pytest.mark.django_db(transaction=True)

GRACE = 6.0


@pytest.fixture
def grpcserver_process(transactional_db: None) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL or "",
        "GRPC_SHUTDOWN_GRACE": str(GRACE),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "grpcserver", "--port", str(port)],
        cwd=Path(settings.BASE_DIR),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        yield process, port, output
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        reader.join(5)


def test_sigterm_shuts_down_gracefully(grpcserver_process: Any, user: Any) -> None:
    process, port, output = grpcserver_process
    task = TaskFactory(owner=user, title="Before")
    metadata = bearer(user)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=20)
        stub, health = pb_grpc.TaskServiceStub(channel), health_pb2_grpc.HealthStub(channel)

        # It serves: the same database, the same signing key, the same rules.
        assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5).status == 1  # SERVING
        assert ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), metadata).task.title == "Before"
        # Logged once the port is open; the reader thread may still be on its way with it.
        deadline = time.monotonic() + 5
        while not any("tasks.v1.TaskService on 127.0.0.1:" in line for line in output):
            assert time.monotonic() < deadline, output
            time.sleep(0.05)

        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=30)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        update = pb.UpdateTaskRequest(
            id=str(task.pk), task=pb.Task(title="After"), update_mask=FieldMask(paths=["title"])
        )
        with row_locked(task.pk):
            in_flight = stub.UpdateTask.future(update, metadata=metadata, timeout=20)
            assert a_call_waits_on_a_lock()
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
            # Health turns first, then the server stops taking calls (a call that lands in between may
            # be cancelled by the core): from then on new calls are UNAVAILABLE, on any channel.
            time.sleep(0.2)
            fails(stub.ListTasks, pb.ListTasksRequest(), metadata, code=grpc.StatusCode.UNAVAILABLE)
            with grpc.insecure_channel(f"127.0.0.1:{port}") as fresh:
                fails(
                    pb_grpc.TaskServiceStub(fresh).ListTasks,
                    pb.ListTasksRequest(),
                    metadata,
                    code=grpc.StatusCode.UNAVAILABLE,
                )
            assert process.poll() is None and not in_flight.done()

        assert in_flight.result(timeout=GRACE).task.title == "After"
        finished = time.monotonic()

    # It exits 0 as soon as nothing is in flight, well within the grace period.
    assert process.wait(timeout=GRACE + 2) == 0
    assert time.monotonic() - finished < 2
    assert time.monotonic() - signalled < GRACE
    assert any("SIGTERM, shutting down" in line for line in output), output
    assert any("gRPC: stopped in" in line for line in output), output
    assert Task.objects.get(pk=task.pk).title == "After"


def test_sigterm_ends_open_streams_unavailable_at_once(grpcserver_process: Any, user: Any) -> None:
    """Streams are not left to the grace period: they end UNAVAILABLE with a reason to reconnect."""
    process, port, _ = grpcserver_process
    metadata = bearer(user)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = pb_grpc.TaskServiceStub(channel)
        watch = stub.WatchTasks(pb.WatchTasksRequest(), metadata=metadata, timeout=30)
        watch.initial_metadata()
        sync = stub.SyncTasks(iter([pb.SyncTasksRequest(watch=pb.WatchTasksRequest())]), metadata=metadata, timeout=30)
        assert next(sync).result.watching_after

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        for stream in (watch, sync):
            with pytest.raises(grpc.RpcError) as info:
                next(stream)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
            assert "reconnect with the last event id" in info.value.details()
        assert time.monotonic() - signalled < 2

    assert process.wait(timeout=GRACE + 2) == 0
    assert time.monotonic() - signalled < GRACE
