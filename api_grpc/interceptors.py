"""Server interceptors: each cross-cutting concern once, around every TaskService call.

Order (outermost first): CallContextInterceptor (request id, DB connection hygiene, access log),
ErrorInterceptor (every exception → its status, never UNKNOWN), DeadlineInterceptor, AuthInterceptor
(identity + rate limit). Health and reflection calls pass through untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeAlias

import grpc
from django.db import close_old_connections

from api_grpc.context import CallState, bind_call, current_call, unbind_call
from api_grpc.errors import abort_with
from core import ratelimit
from core.auth import authenticate_credentials
from core.db import time_budget
from core.errors import NotAuthenticated, RateLimited, TimeBudgetExceeded
from observability.middleware import accept_request_id, request_id_scope

SERVICE_PREFIX = "/tasks.v1.TaskService/"
access_logger = logging.getLogger("taskhub.access")

Context: TypeAlias = grpc.ServicerContext
Behavior = Callable[[Any, Context], Any]


class _UnaryInterceptor(grpc.ServerInterceptor):
    """Wraps the unary-unary behaviour of TaskService methods in `around`."""

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or handler.unary_unary is None or not method.startswith(SERVICE_PREFIX):
            return handler
        behavior: Behavior = handler.unary_unary
        metadata = {key: value for key, value in details.invocation_metadata or ()}

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            return self.around(behavior, request, context, method, metadata)

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )

    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str, metadata: dict[str, str]
    ) -> Any:
        raise NotImplementedError


class CallContextInterceptor(_UnaryInterceptor):
    """Request id in (`x-request-id`) and out (trailing metadata); fresh or healthy DB connections
    around the call, as Django does around an HTTP request; one access log line per call."""

    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str, metadata: Any
    ) -> Any:
        state = CallState(method=method)
        token = bind_call(state)
        request_id = accept_request_id(metadata.get("x-request-id"))
        started = time.perf_counter()
        try:
            with request_id_scope(request_id):
                state.add_trailer(context, "x-request-id", request_id)
                close_old_connections()
                try:
                    return behavior(request, context)
                finally:
                    close_old_connections()
                    code = context.code() or grpc.StatusCode.OK
                    access_logger.info(
                        "%s %s",
                        method,
                        code.name,
                        extra={
                            "protocol": "grpc",
                            "method": method,
                            "status": code.name,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                            "user_id": state.actor.id if state.actor else None,
                        },
                    )
        finally:
            unbind_call(token)


class ErrorInterceptor(_UnaryInterceptor):
    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str, metadata: Any
    ) -> Any:
        try:
            return behavior(request, context)
        except Exception as exc:
            abort_with(exc, context)


class DeadlineInterceptor(_UnaryInterceptor):
    """A call whose deadline has passed does no work; on PostgreSQL its statements get only the
    time that is left."""

    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str, metadata: Any
    ) -> Any:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0.001:
            raise TimeBudgetExceeded("The deadline passed before the work started.")
        with time_budget(remaining):
            return behavior(request, context)


class AuthInterceptor(_UnaryInterceptor):
    """`authorization: Bearer <jwt>` or `x-api-key`, through core.auth; then the caller's rate limit."""

    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str, metadata: Any
    ) -> Any:
        try:
            actor = authenticate_credentials(
                authorization=metadata.get("authorization"), api_key=metadata.get("x-api-key")
            )
            refused = None
        except NotAuthenticated as exc:
            actor, refused = None, exc
        if actor is None:
            # Missing and refused credentials both count against the client's address, as on HTTP.
            decision = ratelimit.hit("anon", "ip:" + _peer_ip(context.peer()))
            if not decision.allowed:
                raise RateLimited(retry_after=decision.retry_after)
            raise refused or NotAuthenticated()
        current_call().actor = actor
        decision = ratelimit.hit("user", f"user:{actor.id}")
        if not decision.allowed:
            raise RateLimited(retry_after=decision.retry_after)
        return behavior(request, context)


def _peer_ip(peer: str) -> str:
    """'ipv4:127.0.0.1:5555' / 'ipv6:[::1]:5555' → the address."""
    _, _, address = peer.partition(":")
    host, _, _ = address.rpartition(":")
    return host.strip("[]") or address


def default_interceptors() -> list[grpc.ServerInterceptor]:
    return [CallContextInterceptor(), ErrorInterceptor(), DeadlineInterceptor(), AuthInterceptor()]
