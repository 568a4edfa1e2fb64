"""What the body of a streaming response logs carries its request's id (docs/operations.md, "Logs"),
though the body runs after ObservabilityMiddleware has returned the response: an SSE stream that
fails, a credential that cannot be checked again, and any streaming body, sync or async, under the
ASGI server (uvicorn, as the events server) and under a WSGI server.

Real servers in this process: uvicorn serving config.asgi (tests/streaming.py) and pytest-django's
live server (WSGI); real connections. Only the failures are injected (monkeypatch)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path

from core.auth import Credential
from observability.logging import JsonFormatter, RequestContextFilter
from tasks.events import Subscription
from tests.api_rest.test_events import _short_heartbeat, open_stream, streams  # noqa: F401 (fixtures)
from tests.factories import UserFactory
from tests.streaming import asgi_server  # noqa: F401 (fixture)

body_logger = logging.getLogger("tests.observability.stream_body")


def sync_body() -> Iterator[bytes]:
    yield b"first\n"
    body_logger.error("sync body failed")
    yield b"last\n"


async def async_body() -> AsyncIterator[bytes]:
    yield b"first\n"
    await asyncio.sleep(0)  # the rest in another step of the loop
    body_logger.error("async body failed")
    yield b"last\n"


def sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(sync_body(), content_type="text/plain")


def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(async_body(), content_type="text/plain")


# The routes of the tests marked `urls(__name__)`: bodies of either kind, which every server adapts.
urlpatterns = [path("stream/sync", sync_stream), path("stream/async", async_stream)]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captured records carrying the request id, as the project's console handler adds it (the filter
    runs where the record is made: the server's thread or task)."""
    caplog.handler.addFilter(RequestContextFilter())
    caplog.set_level(logging.INFO)
    return caplog


def records(logs: pytest.LogCaptureFixture, message: str, timeout: float = 10) -> list[logging.LogRecord]:
    deadline = time.monotonic() + timeout
    while not (found := [r for r in logs.records if r.getMessage() == message]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def test_a_failing_event_stream_is_logged_under_its_request_id(
    open_stream: Any,  # noqa: F811 (the imported fixture)
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(self: Subscription, timeout: float) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(Subscription, "anext", broken)

    stream = open_stream(UserFactory(), X_Request_ID="sse-failed-1")

    assert stream.response.getheader("X-Request-ID") == "sse-failed-1"
    assert stream.next()["event"] == "end"
    [record] = records(logs, "Event stream failed")
    assert record.request_id == "sse-failed-1"  # type: ignore[attr-defined]
    assert '"request_id": "sse-failed-1"' in JsonFormatter().format(record)


def test_a_credential_that_cannot_be_checked_again_is_logged_under_the_streams_request_id(
    open_stream: Any,  # noqa: F811 (the imported fixture)
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    """The check runs on a worker thread (tasks.events: `asyncio.to_thread`), which gets the id too."""
    settings.EVENTS_REAUTH_INTERVAL = 0.2
    stream = open_stream(UserFactory(), X_Request_ID="sse-recheck-1")

    def unreachable(self: Credential, opened_with: Any, *, writes: bool = False) -> None:
        raise RuntimeError("the database is down")

    monkeypatch.setattr(Credential, "recheck", unreachable)

    found = records(logs, "A stream's credential could not be checked again; it is tried later.")
    assert found, "the check was not tried"
    assert {record.request_id for record in found} == {"sse-recheck-1"}  # type: ignore[attr-defined]
    stream.close()


def read(base: str, route: str, request_id: str) -> tuple[str | None, bytes]:
    request = Request(f"{base}{route}", headers={"X-Request-ID": request_id})
    with urlopen(request, timeout=15) as response:
        return response.headers["X-Request-ID"], response.read()


@pytest.mark.urls(__name__)
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")  # Django adapts the other kind
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_any_streaming_body_logs_under_its_request_id_on_the_asgi_server(
    asgi_server: str,  # noqa: F811 (the imported fixture)
    logs: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    request_id = f"asgi-{kind}-body"

    assert read(asgi_server, f"/stream/{kind}", request_id) == (request_id, b"first\nlast\n")

    [record] = records(logs, f"{kind} body failed")
    assert record.request_id == request_id  # type: ignore[attr-defined]


@pytest.mark.urls(__name__)
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")  # Django adapts the other kind
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_any_streaming_body_logs_under_its_request_id_on_a_wsgi_server(
    live_server: Any, transactional_db: None, logs: pytest.LogCaptureFixture, kind: str
) -> None:
    request_id = f"wsgi-{kind}-body"
    base = f"http://{urlsplit(live_server.url).netloc}"

    assert read(base, f"/stream/{kind}", request_id) == (request_id, b"first\nlast\n")

    [record] = records(logs, f"{kind} body failed")
    assert record.request_id == request_id  # type: ignore[attr-defined]
