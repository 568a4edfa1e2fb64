"""Per-call state shared by the interceptors and the servicer (each call runs on one pool thread)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

import grpc

from core.auth import Credential
from core.errors import NotAuthenticated
from core.types import Actor


@dataclass
class CallState:
    method: str
    metadata: dict[str, str] = field(default_factory=dict)
    actor: Actor | None = None
    # Streams only: what the stream re-checks while it runs (core.auth.authenticate_stream).
    credential: Credential | None = None
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def add_trailer(self, context: grpc.ServicerContext, key: str, value: str) -> None:
        """Trailing metadata is set as a whole; keep every piece added during the call."""
        self.trailers.append((key, value))
        context.set_trailing_metadata(tuple(self.trailers))


_call: ContextVar[CallState | None] = ContextVar("grpc_call", default=None)


def current_call() -> CallState:
    state = _call.get()
    if state is None:
        raise RuntimeError("No gRPC call is in progress on this thread.")
    return state


def bind_call(state: CallState) -> object:
    return _call.set(state)


def unbind_call(token: object) -> None:
    _call.reset(token)  # type: ignore[arg-type]


def current_actor() -> Actor:
    actor = current_call().actor
    if actor is None:
        raise NotAuthenticated()
    return actor


def current_credential() -> Credential:
    credential = current_call().credential
    if credential is None:
        raise NotAuthenticated()
    return credential
