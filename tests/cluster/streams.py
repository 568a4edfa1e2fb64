"""Real clients of the three live-event streams, for the cluster tests: Server-Sent Events over http.client, a
graphql-transport-ws subscription over the websockets library, gRPC WatchTasks over grpcio.

Each client reads in a thread of its own into a queue, so a test can write and then wait for what arrived with
a deadline (`wait_for(predicate, timeout)`), and each is a context manager that closes its connection. Events are
matched by the task id they carry: each test writes tasks of its own user, so nothing else can arrive.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import grpc
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc

TIMEOUT = 10
EVENTS_PATH = "/api/v1/tasks/events"
SUBSCRIPTION = "subscription Watch { taskEvents { id type version task { id title } } }"


@dataclass(frozen=True)
class SseEvent:
    """One dispatched Server-Sent Event (the `id:`, `event:` and `data:` lines before a blank line)."""

    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Received:
    """What a stream's reader thread has put in its queue, and how the stream ended."""

    items: queue.Queue[Any] = field(default_factory=queue.Queue)
    seen: list[Any] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = TIMEOUT) -> Any:
        """The first item (already seen or arriving within `timeout`) that `predicate` accepts."""
        for item in self.seen:
            if predicate(item):
                return item
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self.items.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(item)
            if predicate(item):
                return item
        raise AssertionError(f"nothing matched within {timeout} s; received {self.drain()} (error: {self.error!r})")

    def drain(self, settle: float = 0.0) -> list[Any]:
        """Everything received so far (after waiting `settle` seconds for stragglers)."""
        time.sleep(settle)
        while True:
            try:
                self.seen.append(self.items.get_nowait())
            except queue.Empty:
                return list(self.seen)


def mentions(task_id: str) -> Callable[[Any], bool]:
    """A predicate: the event carries this task id (whatever the protocol's representation)."""
    return lambda item: task_id in (item if isinstance(item, str) else repr(item))


# -- Server-Sent Events --------------------------------------------------------------------------------------


class SseClient:
    """`GET /api/v1/tasks/events` with `Accept: text/event-stream`, read line by line as the server writes."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        last_event_id: str | None = None,
        host: str | None = None,
        read_timeout: float = 60,
    ) -> None:
        url = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=read_timeout)
        headers = {"Accept": "text/event-stream", "X-API-Key": api_key, "Cache-Control": "no-cache"}
        if host is not None:
            headers["Host"] = host
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.connection.request("GET", EVENTS_PATH, headers=headers)
        self.response = self.connection.getresponse()
        self.received = Received()
        self.comments = 0
        if self.response.status == 200:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def content_type(self) -> str:
        return self.response.getheader("Content-Type") or ""

    def _read(self) -> None:
        event_id: str | None = None
        event, data = "message", []
        try:
            for raw in iter(self.response.readline, b""):
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if data:
                        self.received.items.put(SseEvent(event_id, event, "\n".join(data)))
                    event, data = "message", []
                elif line.startswith(":"):
                    self.comments += 1  # the heartbeat
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "id":
                        event_id = value
                    elif name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
        except (OSError, http.client.HTTPException) as error:
            self.received.error = error
        finally:
            self.received.ended.set()

    def close(self) -> None:
        # Shut the socket down first: the reader thread then meets the end of the stream, not a closed file.
        if self.connection.sock is not None:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        if self.received.ended.wait(5):
            self.connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- GraphQL over graphql-transport-ws ---------------------------------------------------------------------------


def websocket_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1).rstrip("/") + "/graphql/"


class GraphqlSubscription:
    """A graphql-transport-ws connection to /graphql/: `connection_init` with the API key, one `subscribe`;
    each `next`, `error` or `complete` message is put in the queue as its JSON text. `close_code` is the code of
    the close frame that ended the connection (1006, abnormal closure, when none came)."""

    def __init__(self, base_url: str, api_key: str, *, host: str | None = None, query: str = SUBSCRIPTION) -> None:
        url = websocket_url(base_url)
        sock = None
        if host is not None:  # a replica's own address, with a Host it allows (as the proxy sends)
            address = urlsplit(base_url)
            sock = socket.create_connection((address.hostname, address.port or 80), timeout=TIMEOUT)
            url = f"ws://{host}:{address.port or 80}/graphql/"
        self.websocket: ClientConnection = connect(
            url,
            sock=sock,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            proxy=None,
            open_timeout=TIMEOUT,
            close_timeout=2,
            legacy=True,  # the connection itself, closed by close() (the default to come is a context manager)
        )
        self.websocket.send(json.dumps({"type": "connection_init", "payload": {"X-API-Key": api_key}}))
        ack = json.loads(self.websocket.recv(timeout=TIMEOUT))
        assert ack["type"] == "connection_ack", ack
        self.id = uuid.uuid4().hex
        self.websocket.send(json.dumps({"id": self.id, "type": "subscribe", "payload": {"query": query}}))
        self.received = Received()
        self.close_code: int | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for text in self.websocket:
                message = json.loads(text)
                if message["type"] == "ping":
                    self.websocket.send(json.dumps({"type": "pong"}))
                elif message["type"] in ("next", "error", "complete"):
                    self.received.items.put(json.dumps(message))
        except ConnectionClosed as error:
            self.received.error = error
        finally:
            self.close_code = self.websocket.close_code
            self.received.ended.set()

    def close(self) -> None:
        self.websocket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- gRPC WatchTasks -------------------------------------------------------------------------------------------


class WatchTasks:
    """`tasks.v1.TaskService/WatchTasks` with the API key in the metadata; each TaskEvent is put in the queue."""

    def __init__(self, target: str, api_key: str, *, after: str = "", deadline: float = 120) -> None:
        self.channel = grpc.insecure_channel(target)
        stub = pb_grpc.TaskServiceStub(self.channel)
        self.call = stub.WatchTasks(
            pb.WatchTasksRequest(after=after), metadata=(("x-api-key", api_key),), timeout=deadline
        )
        self.received = Received()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                self.received.items.put(event)
        except grpc.RpcError as error:
            self.received.error = error
        finally:
            self.received.ended.set()

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- writes -------------------------------------------------------------------------------------------------------


def create_task(base_url: str, api_key: str, title: str | None = None, *, host: str | None = None) -> dict[str, Any]:
    """POST /api/v1/tasks (REST) with an Idempotency-Key; the created task."""
    headers = {"X-API-Key": api_key, "Idempotency-Key": uuid.uuid4().hex}
    if host is not None:
        headers["Host"] = host
    response = requests.post(
        f"{base_url}/api/v1/tasks",
        json={"title": title or f"events {uuid.uuid4().hex[:8]}"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task
