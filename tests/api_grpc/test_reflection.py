"""Server reflection: a generic client that knows only the reflection protocol lists the services and
calls ListTasks with messages built from the reflected descriptors (tests/api_grpc/reflection_client.py,
run in a process of its own that never imports our generated code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from api_grpc.server import Running
from tasks.models import Priority
from tests.conftest import access_token
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = Path(__file__).with_name("reflection_client.py")


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
    assert found["methods"] == ["CreateTask", "GetTask", "ListTasks", "UpdateTask", "DeleteTask"]
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
