"""A small graphql-transport-ws client over a real websocket (the `websockets` library), for the
subscription tests: connect, `connection_init`, `subscribe`, then read the server's messages.

Nothing of the server is mocked: it talks to `config.asgi:application` under uvicorn (the
`asgi_server` fixture of tests/streaming.py).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")

EVENT_FIELDS = "id type taskId ownerId version occurredAt task { id title status priority tags version }"
TASK_EVENTS = f"""
subscription Events($filters: TaskEventFilterInput, $after: String) {{
  taskEvents(filters: $filters, after: $after) {{ {EVENT_FIELDS} }}
}}
"""


def websocket_url(base_url: str, path: str = "/graphql/") -> str:
    return base_url.replace("http://", "ws://", 1) + path


class GraphQLSocket:
    """One websocket connection speaking graphql-transport-ws. The server's pings are answered and
    counted (`pings`); every other message is returned by `receive`."""

    def __init__(
        self,
        base_url: str,
        *,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
        origin: str | None = None,
        path: str = "/graphql/",
        receive_buffer: int | None = None,
    ) -> None:
        self.pings = 0
        self.pending: list[dict[str, Any]] = []  # read by `sync` before its pong, returned first by `receive`
        url = websocket_url(base_url, path)
        sock = None
        if receive_buffer is not None:  # a small TCP receive window, no compression: a client that reads slowly
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.connect((urlsplit(url).hostname, urlsplit(url).port))
        self.socket: ClientConnection = connect(
            url,
            sock=sock,
            compression=None if receive_buffer is not None else "deflate",
            subprotocols=[Subprotocol(name) for name in (subprotocols or [PROTOCOL])],
            additional_headers=headers,
            origin=origin,  # type: ignore[arg-type]
            proxy=None,
            open_timeout=10,
            legacy=True,  # the connection itself, closed by __exit__ (the default to come is a context manager)
        )

    def __enter__(self) -> GraphQLSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.socket.close()

    @property
    def subprotocol(self) -> str | None:
        return self.socket.subprotocol

    def send(self, message: dict[str, Any]) -> None:
        self.socket.send(json.dumps(message))

    def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """`connection_init`; returns the server's answer (`connection_ack` when it accepts)."""
        self.send({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
        return self.receive()

    def subscribe(self, query: str = TASK_EVENTS, variables: dict[str, Any] | None = None, id: str = "1") -> None:
        self.send({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})

    def sync(self) -> None:
        """A round trip of the protocol's ping: the server has read every message sent before it."""
        self.send({"type": "ping"})
        while (message := self._read(10)) != {"type": "pong"}:
            self.pending.append(message)

    def receive(self, timeout: float = 10) -> dict[str, Any]:
        """The next message other than a ping (answered with a pong). Raises TimeoutError."""
        return self.pending.pop(0) if self.pending else self._read(timeout)

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message: dict[str, Any] = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0)))
            if message.get("type") != "ping":
                return message
            self.pings += 1
            self.send({"type": "pong"})

    def events(self, count: int, id: str = "1", timeout: float = 10) -> list[dict[str, Any]]:
        """The next `count` events of subscription `id` (each a `next` message's taskEvents)."""
        events = []
        while len(events) < count:
            message = self.receive(timeout)
            assert message.get("type") == "next" and message.get("id") == id, message
            assert "errors" not in message["payload"], message
            events.append(message["payload"]["data"]["taskEvents"])
        return events

    def nothing_within(self, seconds: float) -> bool:
        """No message but pings for `seconds`."""
        try:
            message = self.receive(timeout=seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message: {message}")

    def close_code(self, timeout: float = 10) -> tuple[int | None, str | None]:
        """Reads until the server closes the socket; returns the close code and reason."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.socket.recv(timeout=max(deadline - time.monotonic(), 0))
        except ConnectionClosed as closed:
            received = closed.rcvd
            return (received.code, received.reason) if received is not None else (None, None)


def handshake_status(base_url: str, **options: Any) -> int:
    """The HTTP status of a refused handshake (the server closed before accepting)."""
    try:
        GraphQLSocket(base_url, **options).socket.close()
    except InvalidStatus as refused:
        return refused.response.status_code
    raise AssertionError("the handshake was accepted")
