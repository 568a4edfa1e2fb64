"""Live events across the protocols: one write, made over REST, GraphQL or gRPC, reaches the
subscribers of all three, with the same event ids (one log), and nobody else's.

Real servers in this process, as a client meets them: uvicorn serving `config.asgi` (REST, GraphQL
over HTTP, the GraphQL websocket and Server-Sent Events on one port, as `make run` serves them) and the
gRPC server; real clients: an SSE reader, a graphql-transport-ws websocket, a WatchTasks stream. On the
embedded default the log is the in-process one that both servers share; with REDIS_URL the Redis Stream.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.server import build_server
from core.types import Role
from tasks import events
from tests.api_graphql.websocket_client import GraphQLSocket
from tests.api_grpc.test_events import Stream
from tests.api_rest.test_events import EventStream
from tests.conftest import access_token
from tests.factories import UserFactory
from tests.streaming import asgi_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10.0


class Subscribers:
    """One user's three subscribers; `titles(n)` / `ids(n)` the next n events of each, by protocol."""

    def __init__(self, base: str, stub: pb_grpc.TaskServiceStub, user: Any) -> None:
        token = access_token(user)
        self.sse = EventStream(base, token)
        assert self.sse.response.status == 200 and self.sse.next() == {"retry": "5000"}
        self.ws = GraphQLSocket(base)
        assert self.ws.init({"Authorization": f"Bearer {token}"}) == {"type": "connection_ack"}
        self.ws.subscribe()
        self.grpc = Stream(stub.WatchTasks(pb.WatchTasksRequest(), metadata=(("authorization", f"Bearer {token}"),)))
        self.grpc.call.initial_metadata()  # sent once the stream is subscribed

    def events(self, count: int) -> dict[str, list[tuple[str, str, str]]]:
        """(id, type, title) of the next `count` events on each protocol."""
        sse = [self.sse.next_event() for _ in range(count)]
        ws = self.ws.events(count, timeout=TIMEOUT)
        grpc_events = self.grpc.take(count)
        return {
            "rest": [(e["id"], e["event"], e["data"]["task"]["title"]) for e in sse],
            "graphql": [(e["id"], e["type"].lower(), e["task"]["title"]) for e in ws],
            "grpc": [(e.id, pb.TaskEventType.Name(e.type).removeprefix("TASK_EVENT_TYPE_").lower(), e.task.title)
                     for e in grpc_events],
        }  # fmt: skip

    def nothing(self) -> None:
        """No event on the websocket and the gRPC stream for a while. (An SSE reader cannot wait with
        a timeout and go on reading: the tests check its next event instead.)"""
        assert self.ws.nothing_within(0.5)
        self.grpc.nothing_more(0.2)

    def close(self) -> None:
        self.sse.close()
        self.ws.socket.close()
        self.grpc.call.cancel()


@pytest.fixture
def servers(asgi_server: str) -> Iterator[tuple[str, pb_grpc.TaskServiceStub]]:  # noqa: F811 (the imported fixture)
    running = build_server(host="127.0.0.1", port=0)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield asgi_server, pb_grpc.TaskServiceStub(channel)
    finally:
        channel.close()
        # Streams end at their next look at the call: let them, access lines included, before the test ends.
        deadline = time.monotonic() + TIMEOUT
        while running.streams.count and time.monotonic() < deadline:
            time.sleep(0.02)
        running.shutdown(0).wait(10)


@pytest.fixture
def subscribers(servers: tuple[str, pb_grpc.TaskServiceStub]) -> Iterator[Callable[[Any], Subscribers]]:
    opened: list[Subscribers] = []
    _wait_for_streams(0)  # an earlier test's streams end on the servers' side after its clients left

    def open_(user: Any) -> Subscribers:
        subscribers = Subscribers(*servers, user)
        opened.append(subscribers)
        # The websocket's subscription starts on the server's loop after `subscribe` was read: wait for it.
        _wait_for_streams(3 * len(opened))
        return subscribers

    yield open_
    for subscribers in opened:
        subscribers.close()


def _wait_for_streams(count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while events.open_streams() != count:
        assert time.monotonic() < deadline, f"{events.open_streams()} streams open, not {count}"
        time.sleep(0.02)


def _http(base: str, method: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=TIMEOUT)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, path, body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    content = json.loads(response.read())
    connection.close()
    assert response.status < 300 and "errors" not in content, content
    return content  # type: ignore[no-any-return]


def write_over_each_protocol(base: str, stub: pb_grpc.TaskServiceStub, user: Any) -> None:
    token = access_token(user)
    task = _http(base, "POST", "/api/v1/tasks", token, {"title": "over rest"})
    _http(base, "POST", "/graphql/", token, {
        "query": "mutation($id: ID!) { updateTask(id: $id, input: {title: \"over graphql\"}) { version } }",
        "variables": {"id": task["id"]},
    })  # fmt: skip
    stub.UpdateTask(
        pb.UpdateTaskRequest(id=task["id"], task=pb.Task(title="over grpc"), update_mask={"paths": ["title"]}),
        metadata=(("authorization", f"Bearer {token}"),),
        timeout=TIMEOUT,
    )


def test_a_write_over_any_protocol_reaches_the_subscribers_of_all_three_alike(
    servers: tuple[str, pb_grpc.TaskServiceStub], subscribers: Callable[[Any], Subscribers]
) -> None:
    owner, stranger = UserFactory(), UserFactory()
    watching, other = subscribers(owner), subscribers(stranger)

    write_over_each_protocol(*servers, owner)

    seen = watching.events(3)
    assert [title for _, _, title in seen["rest"]] == ["over rest", "over graphql", "over grpc"]
    assert [kind for _, kind, _ in seen["rest"]] == ["created", "updated", "updated"]
    assert seen["graphql"] == seen["rest"] and seen["grpc"] == seen["rest"]  # one log: the same ids everywhere
    other.nothing()  # B never receives A's events ...
    watching.nothing()  # and each event came once

    write_over_each_protocol(*servers, stranger)
    for protocol, got in other.events(3).items():  # ... on any protocol: B's own come first
        assert [title for _, _, title in got] == ["over rest", "over graphql", "over grpc"], protocol
    watching.nothing()
    _http(servers[0], "POST", "/api/v1/tasks", access_token(owner), {"title": "last"})
    for protocol, got in watching.events(1).items():  # nothing of B's, nothing twice, before it
        assert [title for _, _, title in got] == ["last"], protocol


def test_a_manager_sees_every_users_events_on_every_protocol(
    servers: tuple[str, pb_grpc.TaskServiceStub], subscribers: Callable[[Any], Subscribers]
) -> None:
    boss = subscribers(UserFactory(role=Role.MANAGER))
    write_over_each_protocol(*servers, UserFactory())
    seen = boss.events(3)
    assert seen["rest"] == seen["graphql"] == seen["grpc"]
    assert [title for _, _, title in seen["rest"]] == ["over rest", "over graphql", "over grpc"]
