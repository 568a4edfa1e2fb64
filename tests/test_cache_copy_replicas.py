"""The process's copy of cached reads (CACHE_LOCAL_SECONDS) across real server processes run the
production way, sharing this session's database and Redis: a process answers repeated reads from its
copy, and a write through another process is read at once everywhere after its answer.

The processes: two granian servers (the web role) and `manage.py grpcserver`. Needs REDIS_URL."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import redis
from django.conf import settings

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from tests.conftest import access_token
from tests.factories import UserFactory
from tests.faults import wait_until
from tests.live import test_database_url
from tests.observability.test_health import Process, server_environment, start_grpc, start_http
from tests.test_events_replicas import rest_create

__all__ = ["start_grpc", "start_http"]  # fixtures, used by name

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

TIMEOUT = 15.0


def _request(web: Process, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=TIMEOUT)
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


def _reads(server: redis.Redis) -> int:
    """GET and MGET commands the session's Redis has run."""
    stats = server.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("get", "mget"))


def test_each_process_reads_from_its_copy_and_sees_another_s_write_at_once(
    start_http: Callable[..., Process], start_grpc: Callable[..., tuple[Process, grpc.Channel]]
) -> None:
    environment = server_environment(
        test_database_url(),
        settings.REDIS_URL,
        CACHE_LOCAL_SECONDS="30",
        RATE_LIMITS_ENABLED="false",
        # The copy answers for this long after its last answered PING (and a write waits as long): a
        # loaded machine's pause between two reads of one process must not send the second to Redis
        # (production's 5 ms is checked in tests/core/test_redis_copy.py).
        CACHE_LOCAL_LEASE="0.5",
    )
    web_a, web_b = start_http(environment), start_http(environment)
    _, channel = start_grpc(environment)
    stub = pb_grpc.TaskServiceStub(channel)
    token = access_token(UserFactory())
    metadata = (("authorization", f"Bearer {token}"),)
    server = redis.Redis.from_url(settings.REDIS_URL)

    task = rest_create(web_a, token, "v0")
    path = f"/api/v1/tasks/{task['id']}"

    def read_everywhere() -> None:
        for web in (web_a, web_b):
            status, read = _request(web, "GET", path, token)
            assert (status, read["title"]) == (200, "v0")
        assert stub.GetTask(pb.GetTaskRequest(id=task["id"]), metadata=metadata, timeout=TIMEOUT).task.title == "v0"

    def from_copies() -> bool:
        before = _reads(server)
        read_everywhere()
        return _reads(server) == before

    # Each process's listener starts at its first read; then the task is kept at the next.
    assert wait_until(from_copies, timeout=10)
    before = _reads(server)
    for _ in range(5):
        read_everywhere()
    # 15 reads; at most one a process goes to Redis, after a pause of a slow machine (the copy
    # answers only while the listener has heard from Redis within the last CACHE_LOCAL_LEASE).
    assert _reads(server) - before <= 3

    for n in range(1, 21):
        title = f"v{n}-{uuid.uuid4().hex[:6]}"
        writer = (web_a, web_b)[n % 2]
        status, written = _request(writer, "PATCH", path, token, {"title": title})
        assert status == 200, written

        for web in (web_a, web_b):
            status, read = _request(web, "GET", path, token)
            assert (status, read["title"], read["version"]) == (200, title, written["version"])
        answer = stub.GetTask(pb.GetTaskRequest(id=task["id"]), metadata=metadata, timeout=TIMEOUT)
        assert (answer.task.title, answer.task.version) == (title, written["version"])
