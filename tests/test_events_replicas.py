"""Live events across replicas: separate server processes, run the production way, share the event log
in Redis. A write through one process reaches the subscribers of the others, whatever their protocol;
an events server stopped with SIGTERM ends its streams with a retryable reason, and the client resumes
on another replica without losing or repeating an event.

The processes: granian (WSGI, the web role), two events servers (docker/events_server.py: uvicorn, the
image's events role) and `manage.py grpcserver`, each with production settings, against this session's
database and Redis. Needs REDIS_URL (the in-process log of the embedded default is one process's only).
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from django.conf import settings

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from tests.api_graphql.websocket_client import GraphQLSocket
from tests.api_grpc.test_events import Stream
from tests.api_rest.test_events import EventStream
from tests.conftest import access_token
from tests.factories import UserFactory
from tests.live import free_port, test_database_url
from tests.observability.test_health import (
    Process,
    _spawn,
    server_environment,
    start_grpc,
    start_http,
    until_alive,
)

__all__ = ["start_grpc", "start_http"]  # fixtures, used by name

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

TIMEOUT = 15.0


@pytest.fixture
def environment() -> dict[str, str]:
    """One environment for every process of a test: the same database, Redis and event stream."""
    return server_environment(
        test_database_url(), settings.REDIS_URL, EVENTS_STREAM_KEY=f"test:events:{uuid.uuid4().hex[:8]}"
    )


@pytest.fixture
def start_events(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start docker/events_server.py (the image's events role); ready once /healthz answers 200."""
    started: list[Process] = []

    def start(env: dict[str, str]) -> Process:
        port = free_port()
        log_path = tmp_path / f"events-{port}.log"
        command = [sys.executable, "docker/events_server.py", "--host", "127.0.0.1", "--port", str(port),
                   "--graceful-shutdown", "5"]  # fmt: skip
        server = Process(_spawn(command, env, log_path), port, log_path)
        started.append(server)
        return until_alive(server, "the events server")

    yield start
    for server in started:
        server.stop()


def rest_create(web: Process, token: str, title: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=TIMEOUT)
    connection.request(
        "POST",
        "/api/v1/tasks",
        body=json.dumps({"title": title}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 201, body
    return body  # type: ignore[no-any-return]


def sse(server: Process, token: str, **headers: str) -> EventStream:
    stream = EventStream(f"http://127.0.0.1:{server.port}", token, **headers)
    assert stream.response.status == 200, stream.response.read()
    assert stream.next() == {"retry": "5000"}
    return stream


def test_a_write_through_one_process_reaches_subscribers_on_the_others(
    environment: dict[str, str],
    start_http: Callable[..., Process],
    start_events: Callable[..., Process],
    start_grpc: Callable[..., tuple[Process, grpc.Channel]],
) -> None:
    web, events_a, events_b = start_http(environment), start_events(environment), start_events(environment)
    _, channel = start_grpc(environment)
    stub = pb_grpc.TaskServiceStub(channel)
    user = UserFactory()
    token = access_token(user)
    metadata = (("authorization", f"Bearer {token}"),)

    on_a, on_b = sse(events_a, token), sse(events_b, token)
    websocket = GraphQLSocket(f"http://127.0.0.1:{events_b.port}")
    assert websocket.init({"Authorization": f"Bearer {token}"}) == {"type": "connection_ack"}
    websocket.subscribe()
    websocket.sync()
    watch = Stream(stub.WatchTasks(pb.WatchTasksRequest(), metadata=metadata))
    watch.call.initial_metadata()
    time.sleep(0.5)  # the websocket's subscription starts on the server's loop once `subscribe` is read
    try:
        rest_create(web, token, "through granian")
        stub.CreateTask(pb.CreateTaskRequest(title="through grpcserver"), metadata=metadata, timeout=TIMEOUT)

        titles = ["through granian", "through grpcserver"]
        from_a = [on_a.next_event() for _ in titles]
        from_b = [on_b.next_event() for _ in titles]
        assert [e["data"]["task"]["title"] for e in from_a] == titles
        assert [e["id"] for e in from_b] == [e["id"] for e in from_a]  # one log, the same ids
        assert [e["id"] for e in websocket.events(2, timeout=TIMEOUT)] == [e["id"] for e in from_a]
        assert [e.id for e in watch.take(2)] == [e["id"] for e in from_a]
    finally:
        on_a.close()
        on_b.close()
        websocket.socket.close()
        watch.call.cancel()


def test_a_stopped_events_replica_ends_its_streams_and_the_client_resumes_on_another(
    environment: dict[str, str], start_http: Callable[..., Process], start_events: Callable[..., Process]
) -> None:
    web, leaving, staying = start_http(environment), start_events(environment), start_events(environment)
    user = UserFactory()
    token = access_token(user)
    stream = sse(leaving, token)
    rest_create(web, token, "seen")
    last = stream.next_event()

    started = time.monotonic()
    leaving.process.send_signal(signal.SIGTERM)
    end = stream.next_event()
    assert end["event"] == "end" and end["data"]["code"] == "unavailable", end
    # uvicorn stops gracefully, then raises the signal it caught again: the status is SIGTERM's.
    assert leaving.process.wait(timeout=10) in (0, -signal.SIGTERM), leaving.log()[-3000:]
    assert "Finished server process" in leaving.log()
    assert time.monotonic() - started < 5  # the streams ended at once, not at the end of the grace period
    stream.close()

    rest_create(web, token, "missed while reconnecting")
    resumed = sse(staying, token, Last_Event_ID=last["id"])
    rest_create(web, token, "live")
    got = [resumed.next_event() for _ in range(2)]
    resumed.close()
    assert [e["data"]["task"]["title"] for e in got] == ["missed while reconnecting", "live"]
