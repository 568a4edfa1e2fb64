"""`GET /api/v1/tasks/events` (Server-Sent Events) over real connections: uvicorn serving config.asgi in
this process (`asgi_server`), a stdlib HTTP client reading the stream line by line as it arrives, and
every write made over REST through the same server. The refusals before the stream are problem JSON."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from api_rest.auth import TokenObtainSerializer
from core.auth import api_key_create, api_key_revoke
from core.types import Role
from tests.api_rest.helpers import PROBLEM_KEYS, PROBLEM_TYPE, assert_problem
from tests.conftest import access_token
from tests.factories import UserFactory
from tests.streaming import asgi_server  # noqa: F401 (fixture)

EVENTS = "/api/v1/tasks/events"
TASKS = "/api/v1/tasks"


class EventStream:
    """One SSE connection. `next()` is the next message: an event (`id`, `event`, `data` as JSON), a
    comment (`{"comment": ...}`) or the reconnection hint (`{"retry": ...}`)."""

    def __init__(self, base: str, token: str | None, *, query: str = "", receive_buffer: int | None = None,
                 **headers: str) -> None:  # fmt: skip
        address = urlsplit(base)
        self.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=15)
        if receive_buffer is not None:  # a small window: the server's writes block once it is full
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.settimeout(15)
            sock.connect((address.hostname, address.port))
            self.connection.sock = sock
        sent = {"Accept": "text/event-stream", **{name.replace("_", "-"): value for name, value in headers.items()}}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        self.connection.request("GET", EVENTS + (f"?{query}" if query else ""), headers=sent)
        self.response = self.connection.getresponse()

    def next(self) -> dict[str, Any]:
        message: dict[str, Any] = {}
        while True:
            line = self.response.readline()
            assert line, f"the stream ended; so far: {message}"
            text = line.decode().rstrip("\n")
            if not text:
                if message:
                    return message
                continue
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if not name:
                message["comment"] = value
            else:
                message[name] = json.loads(value) if name == "data" else value

    def next_event(self, timeout: float = 10) -> dict[str, Any]:
        """The next event, past the reconnection hint and keep-alive comments (which would keep a
        read timeout from ever firing), within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while "event" not in (message := self.next()):
            assert time.monotonic() < deadline, f"no event in {timeout} s"
        return message

    def close(self) -> None:
        self.connection.close()


def call(base: str, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=15)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    content = response.read()
    connection.close()
    assert response.status < 300, content
    return json.loads(content) if content else {}


@pytest.fixture(autouse=True)
def _short_heartbeat(settings: Any) -> None:
    """A keep-alive every second: a test waiting for an event that never comes fails in `next_event`'s
    time, not at the token's expiry."""
    settings.EVENTS_HEARTBEAT = 1.0


@pytest.fixture
def streams() -> Iterator[list[EventStream]]:
    opened: list[EventStream] = []
    yield opened
    for stream in opened:
        stream.close()


@pytest.fixture
def open_stream(asgi_server: str, streams: list[EventStream]) -> Any:  # noqa: F811 (the imported fixture)
    def open_(user: Any, **options: Any) -> EventStream:
        token = options.pop("token", None) or access_token(user)
        stream = EventStream(asgi_server, token, **options)
        streams.append(stream)
        assert stream.response.status == 200, stream.response.read()
        assert stream.next() == {"retry": "5000"}
        return stream

    return open_


def test_create_update_complete_delete_arrive_in_order(asgi_server: str, open_stream: Any) -> None:  # noqa: F811
    user = UserFactory()
    token = access_token(user)
    stream = open_stream(user)
    assert stream.response.getheader("Content-Type") == "text/event-stream"
    assert stream.response.getheader("Cache-Control") == "private, no-cache"
    assert stream.response.getheader("X-Accel-Buffering") == "no"

    task = call(asgi_server, "POST", TASKS, token, {"title": "watched", "tags": ["Live"]})
    call(asgi_server, "PATCH", f"{TASKS}/{task['id']}", token, {"title": "renamed"})
    completed = call(asgi_server, "PATCH", f"{TASKS}/{task['id']}", token, {"status": "completed"})
    call(asgi_server, "DELETE", f"{TASKS}/{task['id']}", token)

    events = [stream.next_event() for _ in range(4)]
    assert [event["event"] for event in events] == ["created", "updated", "completed", "deleted"]
    assert [event["data"]["version"] for event in events] == [1, 2, 3, 3]
    for event in events:
        assert event["id"] == event["data"]["id"]
        assert event["data"]["type"] == event["event"]
        assert event["data"]["task_id"] == task["id"]
        assert event["data"]["owner_id"] == user.pk
        assert event["data"]["occurred_at"].endswith("Z")
    assert events[0]["data"]["task"] == task  # the representation GET tasks/{id} gives
    assert events[2]["data"]["task"] == completed
    assert events[3]["data"]["task"] is None
    assert len({event["id"] for event in events}) == 4


def test_a_user_sees_only_their_own_tasks_and_a_manager_sees_all(asgi_server: str, open_stream: Any) -> None:  # noqa: F811
    alice, bob = UserFactory(), UserFactory()
    manager = UserFactory(role=Role.MANAGER)
    bobs_stream = open_stream(bob)
    managers_stream = open_stream(manager)
    managers_own_stream = open_stream(manager, query="mine=true")

    alices_task = call(asgi_server, "POST", TASKS, access_token(alice), {"title": "alice's"})
    bobs_task = call(asgi_server, "POST", TASKS, access_token(bob), {"title": "bob's"})
    managers_task = call(asgi_server, "POST", TASKS, access_token(manager), {"title": "the manager's"})

    assert bobs_stream.next_event()["data"]["task_id"] == bobs_task["id"]  # never alice's, before or after
    assert [managers_stream.next_event()["data"]["task_id"] for _ in range(3)] == [
        alices_task["id"],
        bobs_task["id"],
        managers_task["id"],
    ]
    assert managers_own_stream.next_event()["data"]["task_id"] == managers_task["id"]
    call(asgi_server, "DELETE", f"{TASKS}/{bobs_task['id']}", access_token(bob))
    assert bobs_stream.next_event()["event"] == "deleted"


def test_filters_select_the_events(asgi_server: str, open_stream: Any) -> None:  # noqa: F811
    user = UserFactory()
    token = access_token(user)
    high = open_stream(user, query="priority=high")
    tagged = open_stream(user, query="tag=%20Work%20")
    done = open_stream(user, query="status=completed")

    call(asgi_server, "POST", TASKS, token, {"title": "low", "priority": "low"})
    important = call(asgi_server, "POST", TASKS, token, {"title": "high", "priority": "high"})
    work = call(asgi_server, "POST", TASKS, token, {"title": "work", "tags": ["work"]})
    finished = call(asgi_server, "PATCH", f"{TASKS}/{work['id']}", token, {"status": "completed"})

    assert high.next_event()["data"]["task_id"] == important["id"]
    assert tagged.next_event()["data"]["task"] == work
    event = done.next_event()
    assert (event["event"], event["data"]["task"]) == ("completed", finished)


def test_a_dropped_client_resumes_with_last_event_id(asgi_server: str, open_stream: Any) -> None:  # noqa: F811
    user = UserFactory()
    token = access_token(user)
    stream = open_stream(user)
    first = call(asgi_server, "POST", TASKS, token, {"title": "seen"})
    last_seen = stream.next_event()["id"]
    stream.close()

    missed = call(asgi_server, "POST", TASKS, token, {"title": "missed"})
    call(asgi_server, "PATCH", f"{TASKS}/{first['id']}", token, {"status": "completed"})
    call(asgi_server, "DELETE", f"{TASKS}/{missed['id']}", token)

    # `after` names a position long gone (it would start with a gap): the header, the browser's own, wins.
    resumed = open_stream(user, query="after=1-0", Last_Event_ID=last_seen)
    replayed = [resumed.next_event() for _ in range(3)]
    assert [(event["event"], event["data"]["task_id"]) for event in replayed] == [
        ("created", missed["id"]),
        ("completed", first["id"]),
        ("deleted", missed["id"]),
    ]
    live = call(asgi_server, "POST", TASKS, token, {"title": "live"})
    event = resumed.next_event()  # each missed event came once: the next one is the live one
    assert event["data"]["task_id"] == live["id"]
    assert event["id"] > replayed[-1]["id"]

    by_query = open_stream(user, query=f"after={last_seen}")
    assert by_query.next_event()["data"]["task_id"] == missed["id"]


def test_resuming_from_an_id_the_log_no_longer_holds_starts_with_a_gap(asgi_server: str, open_stream: Any) -> None:  # noqa: F811
    """An id from long before the log's oldest entry: what came after it may be gone (trimmed past
    EVENTS_RETENTION, or a log lost and made anew). tests/tasks/test_events.py trims a log for real."""
    user = UserFactory()
    token = access_token(user)
    call(asgi_server, "POST", TASKS, token, {"title": "before"})

    resumed = open_stream(user, Last_Event_ID="1-0")
    gap = resumed.next_event()
    assert gap["event"] == "gap" and gap["id"] == gap["data"]["id"] != "1-0"
    assert gap["data"]["task"] is None and gap["data"]["task_id"] is None and gap["data"]["version"] is None
    live = call(asgi_server, "POST", TASKS, token, {"title": "after the gap"})
    event = resumed.next_event()  # the stream goes on from the gap's id: only what came later
    assert (event["event"], event["data"]["task_id"]) == ("created", live["id"])
    assert event["id"] > gap["id"]


def test_an_idle_stream_sends_keep_alive_comments(open_stream: Any, settings: Any) -> None:
    settings.EVENTS_HEARTBEAT = 0.2
    user = UserFactory()
    # Timed from before the stream is opened: the server's heartbeat starts when the request arrives,
    # which on a slow machine can be well before open_stream returns.
    started = time.monotonic()
    stream = open_stream(user)
    assert [stream.next() for _ in range(3)] == [{"comment": "keep-alive"}] * 3
    assert time.monotonic() - started >= 0.4


def test_an_expired_token_ends_the_stream(open_stream: Any, settings: Any) -> None:
    settings.EVENTS_REAUTH_INTERVAL = 0.2
    user = UserFactory()
    token = TokenObtainSerializer.get_token(user).access_token
    token.set_exp(lifetime=timedelta(seconds=2))
    stream = open_stream(user, token=str(token))

    end = stream.next_event()

    assert end["event"] == "end" and "id" not in end
    assert end["data"]["code"] == "not_authenticated" and end["data"]["detail"]
    assert stream.response.readline() == b""  # then the server closes the stream


def test_a_revoked_api_key_ends_the_stream(asgi_server: str, streams: list[EventStream], settings: Any) -> None:  # noqa: F811
    settings.EVENTS_REAUTH_INTERVAL = 0.2
    settings.EVENTS_HEARTBEAT = 0.2  # the credential is checked again between waits, not during one
    key, raw = api_key_create(user=UserFactory(), name="events")
    stream = EventStream(asgi_server, None, X_API_Key=raw)
    streams.append(stream)
    assert stream.response.status == 200
    api_key_revoke(prefix=key.prefix)

    end = stream.next_event()

    assert (end["event"], end["data"]["code"]) == ("end", "not_authenticated")


def test_a_client_that_does_not_read_is_dropped(
    asgi_server: str,  # noqa: F811
    open_stream: Any,
    settings: Any,
) -> None:
    settings.EVENTS_BUFFER = 4
    user = UserFactory()
    token = access_token(user)
    stream = open_stream(user, receive_buffer=4096)
    task = call(asgi_server, "POST", TASKS, token, {"title": "bulky"})
    # Each event carries the task, 10 KB here; 3 MB in all is more than the socket buffers (on loopback
    # the server's grows to about 1.3 MB at once) and uvicorn's write buffer hold.
    for number in range(WRITES := 300):
        call(asgi_server, "PATCH", f"{TASKS}/{task['id']}", token, {"description": f"{number:05}" * 2000})

    messages = []
    while (message := stream.next_event())["event"] != "end":
        messages.append(message)

    assert message["data"]["code"] == "slow_consumer"
    assert 0 < len(messages) < 1 + WRITES
    assert stream.response.readline() == b""


def test_too_many_streams_is_429_until_one_closes(asgi_server: str, open_stream: Any, settings: Any) -> None:  # noqa: F811
    settings.EVENTS_MAX_STREAMS_PER_USER = 1
    user = UserFactory()
    first = open_stream(user)

    refused = EventStream(asgi_server, access_token(user))
    assert refused.response.status == 429
    assert refused.response.getheader("Content-Type") == PROBLEM_TYPE
    body = json.loads(refused.response.read())
    assert set(body) >= PROBLEM_KEYS and body["code"] == "too_many_streams"
    refused.close()

    first.close()  # the server sees the client go and frees the slot
    deadline = time.monotonic() + 5
    while (again := EventStream(asgi_server, access_token(user))).response.status == 429:
        again.close()
        assert time.monotonic() < deadline, "the closed stream still holds its slot"
        time.sleep(0.1)
    assert again.response.status == 200
    again.close()


@pytest.mark.parametrize(
    ("query", "headers", "fields"),
    [
        ("status=done", {}, {"status"}),
        ("priority=urgent&status=todo", {}, {"priority"}),
        ("mine=maybe", {}, {"mine"}),
        ("completed=true", {}, {"completed"}),
        ("tag=a&tag=b", {}, {"tag"}),
        ("after=yesterday", {}, {"after"}),
        ("after=%EF%BC%91-%EF%BC%90", {}, {"after"}),  # "\uff11-\uff10": full-width digits, an id is ASCII
        ("", {"Last-Event-ID": "not an id"}, {"after"}),
    ],
)
def test_invalid_parameters_are_400_before_anything_is_streamed(
    asgi_server: str,  # noqa: F811
    query: str,
    headers: dict[str, str],
    fields: set[str],
) -> None:
    stream = EventStream(asgi_server, access_token(UserFactory()), query=query, **headers)
    try:
        assert stream.response.status == 400
        assert stream.response.getheader("Content-Type") == PROBLEM_TYPE
        body = json.loads(stream.response.read())  # the whole body: nothing follows
        assert body["code"] == "invalid_input" and set(body["errors"]) == fields, body
    finally:
        stream.close()


def test_refusals_before_the_stream(asgi_server: str) -> None:  # noqa: F811
    user = UserFactory()
    cases = [
        ({}, 401, "not_authenticated"),  # no credential
        ({"Authorization": "Bearer nonsense"}, 401, "not_authenticated"),
        ({"Authorization": f"Bearer {access_token(user)}", "Accept": "application/json"}, 406, "not_acceptable"),
    ]
    for headers, status, code in cases:
        address = urlsplit(asgi_server)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=15)
        connection.request("GET", EVENTS, headers={"Accept": "text/event-stream", **headers})
        response = connection.getresponse()
        assert response.status == status
        assert response.getheader("Content-Type") == PROBLEM_TYPE
        assert json.loads(response.read())["code"] == code
        if status == 401:
            assert response.getheader("WWW-Authenticate") == 'Bearer realm="api"'
        connection.close()


def test_head_checks_without_opening_a_stream(asgi_server: str, settings: Any) -> None:  # noqa: F811
    settings.EVENTS_MAX_STREAMS_PER_USER = 1
    token = access_token(UserFactory())
    address = urlsplit(asgi_server)
    for query, status in (("", 200), ("", 200), ("?status=done", 400)):
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=15)
        connection.request("HEAD", EVENTS + query, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        assert response.status == status  # twice 200 with a limit of one stream: none was opened
        if status == 200:
            assert response.getheader("Content-Type") == "text/event-stream"
        connection.close()


def test_no_gzip_on_the_stream(asgi_server: str, open_stream: Any) -> None:  # noqa: F811
    stream = open_stream(UserFactory(), Accept_Encoding="gzip")
    assert stream.response.getheader("Content-Encoding") is None


def test_the_wsgi_server_refuses_to_hold_a_stream(api: Any) -> None:
    """The Django test client is a WSGI request, as under granian or gunicorn."""
    response = api.get(EVENTS, HTTP_ACCEPT="text/event-stream")
    body = assert_problem(response, 404, "not_found")
    assert "ASGI" in body["detail"]


def test_a_client_that_leaves_while_the_view_runs_leaves_no_stream_open(transactional_db: None) -> None:
    """Django's ASGI handler drops the response of a request whose client disconnected during the
    view, without closing it, and DRF keeps it in a reference cycle: the stream's slot is free at
    once all the same, without the cycle collector."""
    import asyncio
    import concurrent.futures
    import gc

    from config.asgi import application
    from tasks import events

    token = access_token(UserFactory())

    async def request_then_leave() -> None:
        messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict[str, Any]:
            return next(messages, {"type": "http.disconnect"})

        async def send(message: dict[str, Any]) -> None:
            pass

        headers = [(b"host", b"localhost"), (b"authorization", f"Bearer {token}".encode()),
                   (b"accept", b"text/event-stream")]  # fmt: skip
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": EVENTS, "raw_path": EVENTS.encode(), "query_string": b"",
                 "root_path": "", "headers": headers, "client": ("127.0.0.1", 1234),
                 "server": ("localhost", 80)}  # fmt: skip
        await application(scope, receive, send)

    gc.disable()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop of its own (see tests/tasks/test_events.py)
            for _ in range(5):
                pool.submit(asyncio.run, request_then_leave()).result(timeout=30)
        assert events.open_streams() == 0
    finally:
        gc.enable()


def test_a_client_that_leaves_while_the_view_subscribes_frees_its_slot_at_once(
    asgi_server: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over the real server, the cycle collector switched off: the stream's slot does not wait for it."""
    import gc

    from core import eventlog
    from tasks import events

    for log in (eventlog.MemoryLog, eventlog.RedisStreamLog):  # subscribing reads it: a slow Redis
        position = log.position
        monkeypatch.setattr(log, "position", lambda self, _read=position: (time.sleep(0.5), _read(self))[1])
    address = urlsplit(asgi_server)
    token = access_token(UserFactory())
    gc.disable()
    try:
        client = socket.create_connection((address.hostname, address.port))
        client.sendall(
            f"GET {EVENTS} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        time.sleep(0.1)
        client.close()  # while the view subscribes
        time.sleep(1.0)  # the view is done
        deadline = time.monotonic() + 2
        while events.open_streams() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events.open_streams() == 0
    finally:
        gc.enable()
