"""GraphQL over websockets at /graphql/: the graphql-transport-ws protocol, for subscriptions.

strawberry's Django Channels consumer speaks the protocol; this module decides who may connect and
what runs (docs/api/graphql.md, "Subscriptions"):

- only graphql-transport-ws: a client offering only the legacy `graphql-ws` subprotocol is closed
  with 4406;
- the handshake is refused (HTTP 403) for a `Host` outside ALLOWED_HOSTS, as Django refuses it over
  HTTP, and for a browser page on a foreign origin: the page's own origin, and the origins CORS
  allows, may connect. Cookies never authenticate here, so even an allowed origin gets no session;
- `connection_init` must carry a Bearer token or an API key (`core.auth.authenticate_stream`), in its
  payload or as headers of the upgrade request; without one, or with one that is not valid, the
  socket is closed with 4403 (the protocol's "Forbidden"), and a `subscribe` before that with 4401;
  while the database is down (an API key not cached yet) with 1013 ("Try Again Later"), which
  clients retry on;
- only subscriptions: queries and mutations go over HTTP, with its rate limits and request logs;
- the schema and its limits are those of the HTTP view (`api_graphql.schema.current_schema`);
- the server pings every EVENTS_HEARTBEAT seconds, so proxies keep an idle stream open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from graphql import GraphQLError, GraphQLFormattedError, OperationDefinitionNode, parse
from strawberry.channels import GraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.websocket_origin import normalize_origin
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    Message,
    NextMessagePayload,
    SubscribeMessage,
)
from strawberry.types.unset import UNSET, UnsetType

from api_graphql import PATH
from api_graphql.context import StreamContext
from api_graphql.schema import AMBIGUOUS_OPERATION, current_schema
from core.auth import Credential, authenticate_stream
from core.errors import NotAuthenticated, translate
from core.types import Actor

# ASGI's callables, typed as django-stubs types Django's handler (config/asgi.py wraps both).
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


def _credential(params: object, headers: Mapping[str, str], name: str) -> str | None:
    """A credential by its header name (lower case): from the `connection_init` payload (any case
    of the key), else from the upgrade request's headers. A value that is not text counts as sent
    and not valid, so it is refused rather than ignored."""
    if isinstance(params, dict):
        for key, value in params.items():
            if isinstance(key, str) and key.lower() == name:
                return value if isinstance(value, str) else ""
    return headers.get(name)


def _authenticate(*, authorization: str | None, api_key: str | None) -> tuple[Actor, Credential]:
    """`authenticate_stream` on Django's thread for synchronous code, whose database connection
    is closed when it is too old or broken, as a request's is (Channels' `database_sync_to_async`)."""
    close_old_connections()
    try:
        return authenticate_stream(authorization=authorization, api_key=api_key)
    finally:
        close_old_connections()


class _Unavailable(Exception):
    """`connection_init` could not be checked: the database is down (`core.errors.translate`)."""


class TransportHandler(BaseGraphQLTransportWSHandler[StreamContext, None]):
    """strawberry's protocol handler, with the server's heartbeat, the choice of operation as over
    HTTP, and an operation that ends in an error sent as the protocol's `error` message."""

    heartbeat: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except _Unavailable:
            # strawberry only knows the refusal (4403); this is the server's fault, and passes.
            await self.websocket.close(code=1013, reason="Try Again Later")
            return
        if self.connection_acknowledged and self.heartbeat is None:
            self.heartbeat = asyncio.create_task(self._ping())

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(settings.EVENTS_HEARTBEAT)
            await self.send_message({"type": "ping"})

    async def shutdown(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self.heartbeat
        await super().shutdown()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """A document of several operations needs `operationName`, as over HTTP (OperationChoice
        checks that per request; here one context serves every operation of the connection, so the
        name each `subscribe` sent is checked on the message itself)."""
        payload = message.get("payload")
        if self.connection_acknowledged and isinstance(payload, dict) and _ambiguous(payload):
            error: GraphQLFormattedError = {
                "message": AMBIGUOUS_OPERATION,
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
            }
            await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[error]))
            return
        await super().handle_subscribe(message)

    async def send_message(self, message: Message) -> None:
        """A `next` with errors, no data and no error at a field's path is the end of the event
        source: the domain ended the stream, or refused it (its filters, too many streams, the
        credential). strawberry sends that as a `next` and then `complete`; here it goes out as the
        protocol's `error` message, which ends the operation, so a client sees one terminal message
        with its code."""
        if message["type"] == "next" and _ends_the_stream(message["payload"]):
            operation = self.operations.get(message["id"])
            if operation is not None:
                operation.completed = True  # strawberry's `complete` that follows is not sent
                self.forget_id(message["id"])
            message = ErrorMessage(id=message["id"], type="error", payload=message["payload"].get("errors") or [])
        await super().send_message(message)


def _ends_the_stream(payload: NextMessagePayload) -> bool:
    errors = payload.get("errors") or []
    return payload.get("data") is None and bool(errors) and all(error.get("path") is None for error in errors)


def _ambiguous(payload: Mapping[str, object]) -> bool:
    """The document holds several operations and `operationName` names none. A document that does
    not parse is left to strawberry, which reports it."""
    query = payload.get("query")
    if not isinstance(query, str) or payload.get("operationName") is not None:
        return False
    try:
        document = parse(query, max_tokens=settings.GRAPHQL_MAX_TOKENS)
    except GraphQLError:
        return False
    return sum(isinstance(definition, OperationDefinitionNode) for definition in document.definitions) > 1


class TaskEventsConsumer(GraphQLWSConsumer):
    """One websocket connection at /graphql/ (see the module docstring)."""

    graphql_transport_ws_handler_class = TransportHandler  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(
            schema=current_schema(),
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            # The domain counts streams per user and per process (TooManyStreams, with its code).
            max_subscriptions_per_connection=None,
        )

    async def connect(self) -> None:
        host, _port = split_domain_port(self.get_websocket_headers(self).get("host", ""))
        if not host or not validate_host(host, settings.ALLOWED_HOSTS):
            await self.close()  # before accepting: the server answers the handshake with 403
            return
        await super().connect()

    def is_websocket_origin_allowed(self, request: GraphQLWSConsumer, origin: str) -> bool:
        """A page on another origin may connect when CORS lets it call the API (it still has to send
        a token or an API key: cookies count for nothing here). strawberry has already let through a
        same-origin page and a client that sends no Origin (not a browser)."""
        if not settings.CORS_ENABLED:
            return False
        if settings.CORS_ALLOW_ALL_ORIGINS:
            return True
        allowed = {normalize_origin(allowed) for allowed in settings.CORS_ALLOWED_ORIGINS}
        return normalize_origin(origin) in allowed - {None}

    async def get_context(self, request: GraphQLWSConsumer, response: GraphQLWSConsumer) -> StreamContext:  # type: ignore[override]
        return StreamContext()

    async def on_ws_connect(self, context: StreamContext) -> UnsetType:  # type: ignore[override]
        """Authenticates `connection_init`; a refusal closes the socket with 4403, a database that
        cannot be reached with 1013. The `connection_ack` carries no payload."""
        headers = self.get_websocket_headers(self)
        params = context.connection_params
        try:
            context.actor, context.credential = await sync_to_async(_authenticate)(
                authorization=_credential(params, headers, "authorization"),
                api_key=_credential(params, headers, "x-api-key"),
            )
        except NotAuthenticated:
            raise ConnectionRejectionError() from None
        except Exception as exc:
            if translate(exc) is None:
                raise
            raise _Unavailable() from exc
        return UNSET


async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """Any other websocket path: the handshake is answered with 403."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close", "code": 1000})


def websocket_application() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application of websocket connections: /graphql/ when GraphQL is on, else nothing."""
    consumer = TaskEventsConsumer.as_asgi()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if settings.GRAPHQL_ENABLED and scope["path"] == "/" + PATH:
            await consumer(scope, receive, send)
        else:
            await refuse(scope, receive, send)

    return application
