"""Server-Sent Events for `GET tasks/events`: the wire format of a `tasks.events.Subscription`.

The view (api_rest/apis.py) runs as every other DRF view: content negotiation, authentication, rate
limit and permission, then the filters and `subscribe`, so every refusal before the stream is problem
JSON with its usual status. What it returns is an `EventStreamResponse` over an async iterator, which
Django's ASGI handler streams on the event loop: an open stream holds no thread. The format is the
WHATWG one (docs/api/rest.md, "Live events").
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.utils.mediatypes import media_type_matches

from api_rest.serializers import task_to_json
from core.errors import RETRY_AFTER_UNAVAILABLE, ApplicationError, InternalError
from tasks.events import Subscription, TaskEvent

logger = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"

# The `retry:` hint (milliseconds) an EventSource waits before it reconnects: the wait a 503 asks for.
RETRY_MILLISECONDS = RETRY_AFTER_UNAVAILABLE * 1000

KEEP_ALIVE = b": keep-alive\n\n"


class EventStreamNegotiation(BaseContentNegotiation):
    """The route has one representation, `text/event-stream`: an `Accept` that excludes it is 406.
    Refusals before the stream are problem JSON whatever `Accept` says (the view's one renderer),
    as on every other route."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> None:
        return None  # a GET: no body to parse

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        accepted = [item.strip() for item in request.META.get("HTTP_ACCEPT", "*/*").split(",") if item.strip()]
        if accepted and not any(media_type_matches(EVENT_STREAM, item) for item in accepted):
            raise NotAcceptable(f"This route answers only {EVENT_STREAM}.")
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def _iso(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def event_to_json(event: TaskEvent) -> dict[str, Any]:
    """The `data:` of one event; `task` is what `GET tasks/{id}` answers (None on `deleted` and `gap`)."""
    return {
        "id": event.id,
        "type": str(event.type),
        "task_id": str(event.task_id) if event.task_id is not None else None,
        "owner_id": event.owner_id,
        "version": event.version,
        "occurred_at": _iso(event.occurred_at),
        "task": task_to_json(event.task) if event.task is not None else None,
    }


def _data(payload: dict[str, Any]) -> str:
    # JSON has no raw newline, so one `data:` line carries it whole.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def encode_event(event: TaskEvent) -> bytes:
    return f"id: {event.id}\nevent: {event.type}\ndata: {_data(event_to_json(event))}\n\n".encode()


def encode_end(error: ApplicationError) -> bytes:
    """The last message of a stream the server ends: why, as the `code` and `detail` of a problem.
    It carries no `id:`, so a client resuming goes on from the last event it received."""
    return f"event: end\ndata: {_data({'code': error.code, 'detail': error.message})}\n\n".encode()


async def event_stream(subscription: Subscription, heartbeat: float) -> AsyncIterator[bytes]:
    """The body: the reconnection hint, then the events as they come, a keep-alive comment after
    `heartbeat` idle seconds (proxies close silent connections), and `event: end` when the core ends
    the stream (credential expired or revoked, slow consumer, shutdown). A client that goes away
    cancels it where it waits; `EventStreamResponse.close` frees the subscription either way."""
    retry = f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    try:
        # Its slot again (see EventStreamResponse), before the first byte of the body, in the same
        # step of the loop as the headers: only streams opened meanwhile can have taken it.
        subscription.attach()
    except ApplicationError as error:
        yield retry + encode_end(error)
        return
    yield retry
    while True:
        try:
            events = await subscription.anext(heartbeat)
        except ApplicationError as error:
            yield encode_end(error)
            return
        except Exception:
            logger.exception("Event stream failed")
            yield encode_end(InternalError())
            return
        yield b"".join(encode_event(event) for event in events) if events else KEEP_ALIVE


def _stream_headers(response: HttpResponseBase) -> None:
    response["Cache-Control"] = "private, no-cache"  # as every API answer (config.middleware)
    response["X-Accel-Buffering"] = "no"  # nginx: pass each message on at once


def event_stream_head() -> HttpResponse:
    """The answer to HEAD: the stream's headers, no stream (a subscription would stay open unread)."""
    response = HttpResponse(content_type=EVENT_STREAM)
    _stream_headers(response)
    return response


class EventStreamResponse(StreamingHttpResponse):
    """A streaming response that owns its subscription: the server calls `close()` when the response
    is done, whether the stream ended, the client went away or the body was never read.

    A client that leaves while the view still runs makes Django's ASGI handler drop the response
    without closing it, and DRF's view keeps it in a reference cycle (view.request.parser_context
    names the view), which only the cycle collector would free. So the subscription, whose checks
    (limits, position) the view made, holds its slot only once the body starts: detached here,
    attached again by the body's first step.
    """

    def __init__(self, subscription: Subscription, heartbeat: float) -> None:
        super().__init__(event_stream(subscription, heartbeat), content_type=EVENT_STREAM)
        self.subscription = subscription
        subscription.detach()
        _stream_headers(self)

    def close(self) -> None:
        try:
            self.subscription.close()
        finally:
            super().close()
