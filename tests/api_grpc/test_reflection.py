"""Server reflection: a generic client that knows only the reflection protocol lists the services and
calls ListTasks with messages built from the reflected descriptors (tests/api_grpc/reflection_client.py,
run in a process of its own that never imports our generated code)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.server import Running
from tasks.models import Priority
from tests.api_grpc.helpers import bearer
from tests.conftest import access_token
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = Path(__file__).with_name("reflection_client.py")
V1_CLIENT = Path(__file__).with_name("reflection_v1_client.py")
V1_PROTO = Path(__file__).with_name("reflection_v1.proto")


def test_a_reflection_only_client_lists_and_calls(grpc_server: Running, user: Any, other_user: Any) -> None:
    task = TaskFactory(owner=user, title="Found by reflection", priority=Priority.HIGH, tags=["generic"])
    TaskFactory(owner=other_user, title="Not visible")

    result = subprocess.run(
        [sys.executable, str(CLIENT), f"127.0.0.1:{grpc_server.port}"],
        env={**os.environ, "TASKHUB_TOKEN": access_token(user)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert {"tasks.v1.TaskService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(
        found["services"]
    )
    assert found["methods"] == [
        "CreateTask",
        "GetTask",
        "ListTasks",
        "UpdateTask",
        "DeleteTask",
        "WatchTasks",
        "SyncTasks",
    ]
    assert "due_date" in found["task_fields"] and "version" in found["task_fields"]
    assert found["tasks"] == [
        {"id": str(task.pk), "title": "Found by reflection", "priority": "PRIORITY_HIGH", "tags": ["generic"]}
    ]
    assert found["next_page_token"] == ""
    assert found["health"] == "SERVING"
    assert found["modules"] == []  # no Django, no taskhub code, no generated code in the client


def test_reflection_can_be_switched_off(start_server: Any) -> None:
    running = start_server(reflection_enabled=False)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_v1_reflection_client_lists_and_reads_descriptors(grpc_server: Running, tmp_path: Path) -> None:
    """grpc.reflection.v1, the stable version current clients try first, beside v1alpha; the client
    is compiled from the test's own v1 proto and never loads grpcio-reflection."""
    (tmp_path / "reflection_v1.proto").write_text(V1_PROTO.read_text())
    protoc = [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}", f"--python_out={tmp_path}"]
    compiled = subprocess.run(
        [*protoc, f"--grpc_python_out={tmp_path}", str(tmp_path / "reflection_v1.proto")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr

    result = subprocess.run(
        [sys.executable, str(V1_CLIENT), f"127.0.0.1:{grpc_server.port}", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert {
        "tasks.v1.TaskService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= set(found["services"])
    assert found["tasks_methods"] == [
        "CreateTask",
        "GetTask",
        "ListTasks",
        "UpdateTask",
        "DeleteTask",
        "WatchTasks",
        "SyncTasks",
    ]
    assert found["v1_file"] == [
        "grpc/reflection/v1/reflection.proto",
        "grpc.reflection.v1",
        ["ServerReflectionRequest", "ExtensionRequest"],
    ]
    assert found["modules"] == []


def test_a_second_server_in_the_process_serves_v1_reflection_too(start_server: Any) -> None:
    """The v1 file is added to the descriptor pool once; a second server finds it there."""
    for _ in range(2):
        running = start_server()
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            info = channel.stream_stream(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            (response,) = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        assert "grpc.reflection.v1.ServerReflection" in {s.name for s in response.list_services_response.service}


def test_an_open_reflection_stream_holds_no_thread_of_unary_calls(
    start_server: Any, user: Any, other_user: Any
) -> None:
    """A reflection client may keep its stream open: it runs on the streams' threads, so even with one
    thread for unary calls, a call goes on while the stream waits for its next request."""
    running = start_server(workers=1)
    TaskFactory(owner=user, title="still served")
    requests: queue.Queue[reflection_pb2.ServerReflectionRequest | None] = queue.Queue()
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        reflecting = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter(requests.get, None), timeout=30
        )
        requests.put(reflection_pb2.ServerReflectionRequest(list_services=""))
        assert next(reflecting).list_services_response.service  # the stream is open, and waits

        stub = pb_grpc.TaskServiceStub(channel)
        reply = stub.ListTasks(pb.ListTasksRequest(), metadata=bearer(user), timeout=5)
        assert [task.title for task in reply.tasks] == ["still served"]

        requests.put(None)  # the client half-closes; the stream ends
        assert list(reflecting) == []
