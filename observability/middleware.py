"""The HTTP hook of observability (REST, GraphQL and every other page): request id in and out
(`X-Request-ID`), a SERVER span continuing the caller's `traceparent`, the request metrics, and one
access log line per request. The gRPC interceptor does the same for calls, through the same modules.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, cast

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from opentelemetry import context as otel_context

from observability import metrics, tracing

access_logger = logging.getLogger("taskhub.access")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# A client-sent id is kept only if it is short and plain, so it cannot forge log lines.
# Matched whole (`fullmatch`): `$` would also let a final newline through.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# A new id is a random (version 4) UUID in hex, as `uuid.uuid4().hex` spells it: its bits set here
# directly, without building a UUID object for every request.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID4_SET = (0x8000 << 48) | (4 << 76)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def request_id_scope(request_id: str) -> Iterator[None]:
    """Make `request_id` the current one (log lines, error bodies) until the block ends."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def bind_request_id(request_id: str) -> Token[str | None]:
    """`request_id_scope` without a generator, for hot paths (the gRPC interceptor): make it the
    current id; pass the token to `unbind_request_id` when the call ends."""
    return _request_id.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)


def log_access(message: str, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
    """One access line on `taskhub.access` at INFO, `fields` as its `extra=`, for a caller that has
    checked `access_logger.isEnabledFor(logging.INFO)`. What `Logger.info` does (its record, then
    `Logger.handle`: the logger's filters and handlers), less the search of the stack for the
    caller's file and line, which no access line prints: every request and call writes one."""
    record = access_logger.makeRecord(
        access_logger.name, logging.INFO, "(unknown file)", 0, message, args, None, "(unknown function)", fields
    )
    access_logger.handle(record)


def accept_request_id(candidate: str | None) -> str:
    """The client's request id if it is safe to echo and log, else a new one."""
    if candidate and _SAFE_ID.fullmatch(candidate):
        return candidate
    return f"{int.from_bytes(os.urandom(16), 'big') & _UUID4_CLEAR | _UUID4_SET:032x}"


class ObservabilityMiddleware:
    """First in MIDDLEWARE, so its duration and span cover everything below it.

    The protocol label is the `api_protocol` attribute of the view class the route resolved to
    (`rest` on the REST views, `graphql` on the GraphQL view), `http` for every other page (admin,
    docs, health, metrics). It is known once the URL resolved, so a request is counted in
    `api_active_requests` from `process_view` on.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # META, not request.headers: that builds a dict of every header, which only tracing needs.
        request_id = accept_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        token = _request_id.set(request_id)
        started = time.perf_counter()
        method = request.method if request.method in _METHODS else "other"  # a label: never client-made text
        observation = request.observation = metrics.observe_request("http", method, "unmatched")  # type: ignore[attr-defined]
        try:
            with (
                tracing.server_span(
                    method, request.headers if tracing.enabled() else {}, {"http.request.method": method}
                ) as span,
                observation,
            ):
                response = self.get_response(request)
                response["X-Request-ID"] = request_id
                if response.streaming and not isinstance(response, FileResponse):
                    # Its body runs after this returns, when the id is unbound: it binds its own. Not a
                    # file's (WhiteNoise), which logs nothing and would lose the server's file_wrapper.
                    trace = otel_context.get_current() if span is not None else None
                    _bind_body(cast(StreamingHttpResponse, response), request_id, trace)
                route = _route(request)
                observation.endpoint = getattr(request, "api_endpoint", None) or route
                observation.status = str(response.status_code)
                if span is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", response.status_code)
                    if response.status_code >= 500:
                        tracing.mark_error(span, str(response.status_code))
                if access_logger.isEnabledFor(logging.INFO):  # else the line's fields are not worth making
                    user = getattr(request, "user", None)
                    log_access(
                        "%s %s %s",
                        (method, request.path, response.status_code),
                        {
                            "protocol": observation.protocol,
                            "method": method,
                            "path": request.path,
                            "route": observation.endpoint,
                            "status": response.status_code,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                            "user_id": getattr(user, "pk", None),
                        },
                    )
                return response
        finally:
            _request_id.reset(token)

    def process_view(self, request: HttpRequest, view: Callable[..., HttpResponse], *args: object) -> None:
        view_class = getattr(view, "view_class", None)
        request.observation.start_active(getattr(view_class, "api_protocol", None) or "http")  # type: ignore[attr-defined]


def _bind_body(response: StreamingHttpResponse, request_id: str, trace: otel_context.Context | None) -> None:
    """Make the body of a streaming response run under its request's id, and under its SERVER span's
    context when tracing is on (the span has ended by then, but the body's log lines and spans stay in
    its trace), so what the body logs (an SSE stream that fails) carries the id its client received.

    Bound around each step of the body, not across a `yield`: the server iterates it in its own
    context (a task on the event loop under ASGI, a thread under WSGI) and runs its own code there
    between steps, where an id left bound would outlive the request. The body stays sync or async as
    it was; Django adapts either kind to the server."""
    content = response.streaming_content
    if response.is_async:
        response.streaming_content = _bound_async(cast(AsyncIterator[bytes], content), request_id, trace)
    else:
        response.streaming_content = _bound_sync(cast(Iterator[bytes], content), request_id, trace)


@contextmanager
def _bound(request_id: str, trace: otel_context.Context | None) -> Iterator[None]:
    """One step of a streaming body under its request's id and trace context, unbound after it."""
    token = _request_id.set(request_id)
    trace_token = otel_context.attach(trace) if trace is not None else None
    try:
        yield
    finally:
        if trace_token is not None:
            otel_context.detach(trace_token)
        _request_id.reset(token)


def _bound_sync(content: Iterator[bytes], request_id: str, trace: otel_context.Context | None) -> Iterator[bytes]:
    iterator = iter(content)
    while True:
        with _bound(request_id, trace):
            try:
                chunk = next(iterator)
            except StopIteration:
                return
        yield chunk


async def _bound_async(
    content: AsyncIterator[bytes], request_id: str, trace: otel_context.Context | None
) -> AsyncIterator[bytes]:
    iterator = aiter(content)
    while True:
        with _bound(request_id, trace):
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                return
        yield chunk


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return "unmatched"  # a 404 before any route matched: never the raw path
    return metrics.route_template(match.route)
