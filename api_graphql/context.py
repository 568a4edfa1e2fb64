"""The request context: who is asking, decided once per request by `views.GraphQLView`, or once per
websocket connection by `websocket.TaskEventsConsumer`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.django.context import StrawberryDjangoContext

from core.auth import Credential
from core.errors import ApplicationError, NotAuthenticated
from core.types import Actor


@dataclass
class Context(StrawberryDjangoContext):
    actor: Actor | None = None
    # A credential that was sent but is not valid: every resolver that needs an actor raises it.
    auth_error: ApplicationError | None = None
    # The `operationName` the request sent, None when it named none (set by `views.GraphQLView`).
    # strawberry's `ExecutionContext.operation_name` cannot tell: it falls back to the first operation.
    operation_name: str | None = None
    # A resolver handed on cached rows (`api_graphql.types.TaskRow`), so the result may hold tasks
    # completed with their JSON text (`api_graphql.execution.Rendered`), which the view splices in.
    holds_rendered: bool = False
    # The mutation fields run so far: each write past the first counts against the rate limit again.
    writes: int = 0


@dataclass
class StreamContext:
    """The context of every operation of one websocket connection. `actor` and `credential` are set
    when `connection_init` authenticates; a connection is acknowledged only then."""

    # strawberry's graphql-transport-ws handler stores the `connection_init` payload here.
    connection_params: Mapping[str, Any] = field(default_factory=dict)
    actor: Actor | None = None
    credential: Credential | None = None
    auth_error: ApplicationError | None = None  # never set: a connection without an actor is refused


def note_rows(info: strawberry.Info) -> None:
    """The result may hold `Rendered` tasks: the view then writes their JSON text as it is."""
    if isinstance(info.context, Context):
        info.context.holds_rendered = True


def actor_of(info: strawberry.Info) -> Actor:
    """The authenticated actor of this request. Raises NotAuthenticated (→ UNAUTHENTICATED)."""
    context: Context | StreamContext = info.context
    if context.auth_error is not None:
        raise context.auth_error
    if context.actor is None:
        raise NotAuthenticated()
    return context.actor


def stream_identity(info: strawberry.Info) -> tuple[Actor, Credential]:
    """The actor of a websocket connection and the credential it authenticated with, which the event
    stream checks again until it expires. Raises NotAuthenticated anywhere else (a subscription over
    HTTP has no connection to keep)."""
    context = info.context
    if not isinstance(context, StreamContext) or context.actor is None or context.credential is None:
        raise NotAuthenticated("Subscriptions run over the websocket (graphql-transport-ws) at /graphql/.")
    return context.actor, context.credential
