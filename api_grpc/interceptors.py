"""The server interceptor: every cross-cutting concern of a TaskService call, in one place.

Around each call, in this order: request id in (`x-request-id`) and out (trailing metadata); the
call's metrics and its SERVER span (continuing a `traceparent` sent in the metadata); fresh or
healthy database connections, as Django does around an HTTP request; the deadline (a call whose
deadline has passed does no work, and its statements get only the time that is left; a call that
was cancelled or cut off by a shutdown runs no further statement); identity
(`authorization: Bearer <jwt>` or `x-api-key`, each sent once, through core.auth) and the caller's
rate limit; a request whose bytes were refused (`converters.decode_request`) is INVALID_ARGUMENT
from here; the servicer; every exception mapped to its status (never UNKNOWN); one access log line.

A stream (WatchTasks, SyncTasks: `stream`) gets the same for its whole length, and first one of the
server's stream slots (`api_grpc.streams.OpenStreams`, GRPC_MAX_STREAMS). It runs on the streams'
own threads, never on the GRPC_WORKERS threads of unary calls; so does a server reflection stream.

One interceptor rather than one per concern, and the wrapped handler built once per method: grpcio
runs the interceptor chain and builds a new handler on every call, and on a cache hit that machinery
cost more than the call itself (bench/README.md, row (h)). Health and reflection calls pass through
(reflection on the streams' threads). A method TaskService does not have is UNIMPLEMENTED, as grpcio
answers it, and counted and logged as any call, its endpoint `unmatched` (`TaskServiceInterceptor.unmatched`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import unquote

import grpc

from api_grpc.context import CallState, bind_call, unbind_call
from api_grpc.converters import Refused, decode_request
from api_grpc.errors import abort_with
from api_grpc.replies import serialize_reply
from api_grpc.streams import OpenStreams
from core import ratelimit
from core.auth import Credential, authenticate_credentials, authenticate_stream
from core.db import close_old_connections, time_budget
from core.errors import NotAuthenticated, RateLimited, TimeBudgetExceeded, translate
from core.types import Actor
from observability import metrics, tracing
from observability.middleware import (
    accept_request_id,
    access_logger,
    bind_request_id,
    log_access,
    request_id_scope,
    unbind_request_id,
)

SERVICE_PREFIX = "/tasks.v1.TaskService/"
# Server reflection (v1alpha and v1): a client may hold its stream open for as long as it likes.
REFLECTION_PREFIX = "/grpc.reflection."
# The endpoint and route of a call to a method TaskService does not have, as REST names an unknown URL.
UNMATCHED = "unmatched"
_UNMATCHED_SPAN = SERVICE_PREFIX[1:] + UNMATCHED
_UNMATCHED_ATTRIBUTES = {"rpc.system": "grpc", "rpc.service": SERVICE_PREFIX[1:-1]}
# The methods whose behaviour may return the reply already serialized (api_grpc.replies).
SERIALIZED_REPLIES = frozenset({SERVICE_PREFIX + "GetTask", SERVICE_PREFIX + "ListTasks"})

Behavior = Callable[[Any, grpc.ServicerContext], Any]

# The codes that mean the server failed (OpenTelemetry's rule for gRPC SERVER spans); a refused
# request (NOT_FOUND, INVALID_ARGUMENT, ...) is the client's error and leaves the span unset.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


# A status code's name (the access log's and the metrics' `status`), without the enum's property lookup.
_NAMES = {code: code.name for code in grpc.StatusCode}

# The metadata that names the caller. Sent twice, which entry counts would be a guess, and the other
# would be a credential never checked: refused (`authenticate`), as REST refuses the joined header.
_CREDENTIAL_KEYS = frozenset({"authorization", "x-api-key"})
# A key of `call_metadata`'s dict no client can send (gRPC keys never start with ":"), naming the
# credential that came more than once.
_REPEATED_CREDENTIAL = ":repeated-credential"


def call_metadata(context: grpc.ServicerContext) -> dict[str, str]:
    """The call's metadata, one value per key. A key sent more than once has its values joined with
    ", ", as granian joins a repeated HTTP header for REST and GraphQL: a repeated `x-request-id` then
    fails the id's pattern and the call gets a new id, on every protocol. A repeated credential is
    marked besides, for `authenticate` to refuse."""
    entries = context.invocation_metadata()
    metadata: dict[str, str] = dict(entries)
    if len(metadata) == len(entries):  # every key once: the per-call path stops here
        return metadata
    metadata = {}
    for key, value in entries:
        if key in metadata:
            if key in _CREDENTIAL_KEYS:
                metadata[_REPEATED_CREDENTIAL] = key
            if not key.endswith("-bin"):  # binary values are not text to join: the last one counts
                value = f"{metadata[key]}, {value}"
        metadata[key] = value
    return metadata


def _refuse_repeated_credential(metadata: dict[str, str]) -> None:
    if (key := metadata.get(_REPEATED_CREDENTIAL)) is not None:
        raise NotAuthenticated(f"Send `{key}` once: a credential given more than once is refused.")


class TaskServiceInterceptor(grpc.ServerInterceptor):
    def __init__(self, streams: OpenStreams) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.streams = streams

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None], details: Any
    ) -> grpc.RpcMethodHandler | None:
        method: str = details.method
        wrapped = self._handlers.get(method)
        if wrapped is not None:
            return wrapped
        handler = continuation(details)
        if handler is not None and handler.stream_stream is not None and method.startswith(REFLECTION_PREFIX):
            # Passes through, but on the streams' threads: an open reflection stream never holds a
            # thread of unary calls.
            wrapped = grpc.stream_stream_rpc_method_handler(
                self._on_stream_pool(partial(handler.stream_stream)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
            self._handlers[method] = wrapped
            return wrapped
        if handler is None and method.startswith(SERVICE_PREFIX):
            # A method TaskService does not have: UNIMPLEMENTED, as grpcio answers it, but counted and
            # logged as every call. Never cached: its name is the client's, any number of them.
            return grpc.stream_unary_rpc_method_handler(partial(self.unmatched, method))
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        # Bad bytes become a Refused request, which `serve` answers INVALID_ARGUMENT with our
        # trailers, instead of grpcio's INTERNAL "Exception deserializing request!".
        deserializer = partial(decode_request, handler.request_deserializer)
        if handler.unary_unary is not None:
            service, _, name = method[1:].partition("/")
            attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
            wrapped = grpc.unary_unary_rpc_method_handler(
                partial(self.call, handler.unary_unary, method, attributes),
                request_deserializer=deserializer,
                # GetTask and ListTasks answer with serialized replies (api_grpc.replies).
                response_serializer=serialize_reply if method in SERIALIZED_REPLIES else handler.response_serializer,
            )
        elif handler.unary_stream is not None:
            wrapped = grpc.unary_stream_rpc_method_handler(
                self._on_stream_pool(partial(self.stream, handler.unary_stream, method)),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        elif handler.stream_stream is not None:
            wrapped = grpc.stream_stream_rpc_method_handler(
                self._on_stream_pool(partial(self.stream, handler.stream_stream, method)),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        else:  # TaskService has no client-streaming method
            return handler
        self._handlers[method] = wrapped  # a race only builds the same handler twice
        return wrapped

    def _on_stream_pool(self, behavior: partial[Any]) -> partial[Any]:
        """`behavior`, run on the streams' own threads (`OpenStreams.pool`) instead of the server's
        pool of GRPC_WORKERS threads: grpcio submits a call to the pool its behavior names as
        `experimental_thread_pool` (grpc_health's non-blocking Watch is given its pool the same way)."""
        behavior.experimental_thread_pool = self.streams.pool  # type: ignore[attr-defined]
        return behavior

    def call(
        self, behavior: Behavior, method: str, attributes: dict[str, str], request: Any, context: grpc.ServicerContext
    ) -> Any:
        started = time.perf_counter()
        metadata = call_metadata(context)
        state = CallState(method=method, metadata=metadata)
        token = bind_call(state)
        request_id = accept_request_id(metadata.get("x-request-id"))
        request_id_token = bind_request_id(request_id)  # request_id_scope, without its generator
        try:
            with (
                metrics.observe_request("grpc", "POST", method, active=True) as observation,
                tracing.server_span(method[1:], metadata, attributes) as span,
            ):
                state.add_trailer(context, "x-request-id", request_id)
                close_old_connections()
                try:
                    return self.serve(behavior, request, context, state)
                except Exception as exc:
                    abort_with(exc, context)  # raises: the status and trailers are set
                finally:
                    close_old_connections()
                    observation.status = _finish(context, span, state, method, started)
        finally:
            unbind_request_id(request_id_token)
            unbind_call(token)

    def unmatched(self, method: str, requests: Iterator[bytes], context: grpc.ServicerContext) -> None:
        """A call to a method TaskService does not have, whatever its kind (a stream of requests, left
        unread, takes any): UNIMPLEMENTED, with its request id, metrics and access line as any call. Its
        endpoint and route are `unmatched`, as REST labels an unknown URL: never the client's name for
        it, which only the access line's `path` carries. Nothing to authenticate or rate-limit: REST
        answers an unknown URL 404 before either."""
        started = time.perf_counter()
        metadata = call_metadata(context)
        state = CallState(method=method, metadata=metadata)
        token = bind_call(state)
        request_id = accept_request_id(metadata.get("x-request-id"))
        request_id_token = bind_request_id(request_id)
        try:
            with (
                metrics.observe_request("grpc", "POST", UNMATCHED, active=True) as observation,
                tracing.server_span(_UNMATCHED_SPAN, metadata, _UNMATCHED_ATTRIBUTES) as span,
            ):
                state.add_trailer(context, "x-request-id", request_id)
                try:
                    context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")  # grpcio's own answer
                finally:
                    observation.status = _finish(context, span, state, UNMATCHED, started, path=method)
        finally:
            unbind_request_id(request_id_token)
            unbind_call(token)

    def serve(self, behavior: Behavior, request: Any, context: grpc.ServicerContext, state: CallState) -> Any:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0.001:
            raise TimeBudgetExceeded("The deadline passed before the work started.")
        with time_budget(remaining, wanted=context.is_active):
            state.actor = authenticate(state.metadata, context)
            if isinstance(request, Refused):
                raise request.error
            return behavior(request, context)

    def stream(self, behavior: Behavior, method: str, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """A streaming call: what `call` does around a unary one, for the whole stream.

        The stream takes one of the server's stream slots first (`OpenStreams`), then authenticates
        (`core.auth.authenticate_stream`: a stream needs a user, and keeps the credential to re-check
        it) and counts once against the rate limit. Its metrics and span cover the whole stream, and
        are not counted in `api_active_requests` (`api_event_streams_active` counts open streams). A
        stream that ends because its client cancelled or its deadline passed ends quietly: nothing is
        sent, nothing is logged as an error. `request` is the request iterator of SyncTasks, whose
        messages the servicer checks for Refused itself.
        """
        started = time.perf_counter()
        metadata = call_metadata(context)
        state = CallState(method=method, metadata=metadata)
        token = bind_call(state)
        request_id = accept_request_id(metadata.get("x-request-id"))
        service, _, name = method[1:].partition("/")
        holds_slot = False
        try:
            with (
                request_id_scope(request_id),
                metrics.observe_request("grpc", "POST", method) as observation,
                tracing.server_span(
                    method[1:], metadata, {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
                ) as span,
            ):
                state.add_trailer(context, "x-request-id", request_id)
                close_old_connections()
                try:
                    self.streams.acquire()
                    holds_slot = True
                    with time_budget(context.time_remaining(), wanted=context.is_active):
                        state.actor, state.credential = authenticate_stream_call(state.metadata, context.peer())
                    if isinstance(request, Refused):
                        raise request.error
                    yield from behavior(request, context)
                except Exception as exc:
                    if context.is_active() or translate(exc) is None:
                        abort_with(exc, context)  # raises: the status and trailers are set
                    # else the call ended first (cancelled, deadline): its client has its status
                finally:
                    close_old_connections()
                    observation.status = _finish(context, span, state, method, started)
        finally:
            if holds_slot:  # only now: a server that waits for its streams to end waits for this too
                self.streams.release()
            unbind_call(token)


# The client's deadline passes before the server's (which counts from when the call arrived), and its
# channel cancels the call then: a call that ends this close to its deadline ended by the deadline,
# which is also the status the client got.
_DEADLINE_SLACK = 0.1


def _finish(
    context: grpc.ServicerContext, span: Any, state: CallState, method: str, started: float, path: str | None = None
) -> str:
    """Record how the call ended on its span and in the access log; returns the status name. `path` is
    the method the client named when `method` is not it (`unmatched`), as REST logs an unknown URL."""
    code: grpc.StatusCode = context.code() or grpc.StatusCode.OK
    if code == grpc.StatusCode.OK and not context.is_active():
        # The client went away or the deadline passed: the client sees that status, not OK.
        remaining = context.time_remaining()
        expired = remaining is not None and remaining <= _DEADLINE_SLACK
        code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
    # OK, nearly every call's, without the lookup: the dict calls the enum's __hash__, a Python method.
    name = "OK" if code is grpc.StatusCode.OK else _NAMES[code]
    if span is not None:
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_FAULTS:
            tracing.mark_error(span, name)
    if access_logger.isEnabledFor(logging.INFO):  # else the line's fields are not even built
        fields = {
            "protocol": "grpc",
            "method": "POST",
            "route": method,
            "status": name,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "user_id": state.actor.id if state.actor else None,
        }
        if path is not None:
            fields["path"] = path
        log_access("%s %s", (path or method, name), fields)
    return name


def authenticate(metadata: dict[str, str], context: grpc.ServicerContext) -> Actor:
    """The caller's identity, then its rate limit. Missing and refused credentials both count
    against the client's address, as on HTTP."""
    try:
        if _REPEATED_CREDENTIAL in metadata:  # checked here: a call on every call for what is rare
            _refuse_repeated_credential(metadata)
        actor = authenticate_credentials(authorization=metadata.get("authorization"), api_key=metadata.get("x-api-key"))
        refused = None
    except NotAuthenticated as exc:
        actor, refused = None, exc
    if ratelimit.enabled():  # else the client's address is not even read
        check_rate_limit(actor, client_address(metadata, context.peer()))
    if actor is None:
        raise refused or NotAuthenticated()
    return actor


def authenticate_stream_call(metadata: dict[str, str], peer: str) -> tuple[Actor, Credential]:
    """`authenticate` for a stream: the same credentials and rate limit, and the credential the
    stream re-checks while it lasts."""
    try:
        _refuse_repeated_credential(metadata)
        actor, credential = authenticate_stream(
            authorization=metadata.get("authorization"), api_key=metadata.get("x-api-key")
        )
    except NotAuthenticated:
        check_rate_limit(None, client_address(metadata, peer))
        raise
    check_rate_limit(actor, client_address(metadata, peer))
    return actor, credential


def check_rate_limit(actor: Actor | None, address: str) -> None:
    """Count one call (or one SyncTasks command) of the caller, from `address` (`client_address`);
    raises RateLimited over the limit."""
    decision = ratelimit.hit_caller(actor.id if actor is not None else None, address)
    if not decision.allowed:
        raise RateLimited(retry_after=decision.retry_after)


def client_address(metadata: dict[str, str], peer: str) -> str:
    """The caller's address, as REST finds it (`core.ratelimit.client_ip`): the peer's, or behind
    TRUSTED_PROXY_COUNT proxies the one the outermost of them put in `x-forwarded-for` (the bundled
    nginx sets it for gRPC too)."""
    return ratelimit.client_ip(_peer_ip(peer), metadata.get("x-forwarded-for"))


def _peer_ip(peer: str) -> str:
    """The client's address as REST's REMOTE_ADDR spells it, so anonymous callers share one counter
    per address across the protocols: 'ipv4:127.0.0.1:5555' → '127.0.0.1'; 'ipv6:%5B::1%5D:5555'
    (grpcio percent-encodes the brackets) → '::1'."""
    _, _, address = unquote(peer).partition(":")
    host, _, _ = address.rpartition(":")
    return host.strip("[]") or address


def default_interceptors(streams: OpenStreams) -> list[grpc.ServerInterceptor]:
    return [TaskServiceInterceptor(streams)]
