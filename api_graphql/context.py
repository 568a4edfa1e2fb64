"""The request context: who is asking, decided once per request by `views.GraphQLView`."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from strawberry.django.context import StrawberryDjangoContext

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


def actor_of(info: strawberry.Info) -> Actor:
    """The authenticated actor of this request. Raises NotAuthenticated (→ UNAUTHENTICATED)."""
    context: Context = info.context
    if context.auth_error is not None:
        raise context.auth_error
    if context.actor is None:
        raise NotAuthenticated()
    return context.actor
