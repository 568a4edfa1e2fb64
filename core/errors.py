"""Protocol-neutral errors, and the one table that says how each protocol answers them.

Domain code raises these. Every class has a `code`; `OUTCOMES` maps each code to its HTTP status, its
GraphQL `extensions.code` and its gRPC status (by name: this layer does not import grpc), and the
three adapters read only that table (docs/api/errors.md, "The table").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError

from core import outages

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """Base of every error a client may see; `message` is safe to show, `extra` is structured detail."""

    code = "error"
    default_message = "The request failed."

    def __init__(self, message: str | None = None, *, extra: Mapping[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.extra: dict[str, Any] = dict(extra or {})
        super().__init__(self.message)


class InvalidInput(ApplicationError):
    """The input is malformed or breaks a rule; `extra["fields"]` maps field names to messages."""

    code = "invalid_input"
    default_message = "The input is not valid."

    @classmethod
    def for_fields(cls, fields: Mapping[str, list[str]], message: str | None = None) -> InvalidInput:
        return cls(message, extra={"fields": {name: list(msgs) for name, msgs in fields.items()}})


class NotAuthenticated(ApplicationError):
    code = "not_authenticated"
    default_message = "Authentication credentials were missing or not valid."


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    default_message = "Your role does not allow this."


class NotFound(ApplicationError):
    code = "not_found"
    default_message = "Not found."


class StaleVersion(ApplicationError):
    """The expected version differs from the stored one; `extra["current_version"]` says which it is."""

    code = "stale_version"
    default_message = "The resource has changed since you read it."

    def __init__(self, *, current: int) -> None:
        super().__init__(extra={"current_version": current})


class IdempotencyKeyReused(ApplicationError):
    """An idempotency key came back with a different request."""

    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with a different request."


class IdempotencyKeyInFlight(ApplicationError):
    """The first request with this idempotency key has not finished yet."""

    code = "idempotency_key_in_flight"
    default_message = "A request with this Idempotency-Key is still being processed."


class RateLimited(ApplicationError):
    code = "rate_limited"
    default_message = "Too many requests."

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(extra={"retry_after": retry_after})
        self.retry_after = retry_after


class TooManyStreams(ApplicationError):
    """A new event stream would pass the per-user or per-process limit (EVENTS_MAX_STREAMS*)."""

    code = "too_many_streams"
    default_message = "Too many open event streams."


class SlowConsumer(ApplicationError):
    """An event stream ended because its client fell more than EVENTS_BUFFER events behind."""

    code = "slow_consumer"
    default_message = "The stream fell too far behind and was closed; reconnect with the last event id you received."


# Seconds a client is told to wait (Retry-After) when the service is unavailable.
RETRY_AFTER_UNAVAILABLE = 5


class ServiceUnavailable(ApplicationError):
    code = "unavailable"
    default_message = "The service is temporarily unavailable. Try again later."


class TimeBudgetExceeded(ApplicationError):
    code = "timeout"
    default_message = "The request took longer than its time budget."


# -- errors of the transport: raised by an adapter about the request itself, never by the domain -----


class MalformedRequest(ApplicationError):
    """The request cannot be decoded at all: a body that is not JSON, bytes that are not the protobuf message."""

    code = "malformed_request"
    default_message = "The request body could not be decoded."


class BadRequest(ApplicationError):
    """A request the web framework cannot take (a Host not allowed, a broken multipart body)."""

    code = "bad_request"
    default_message = "The request could not be understood."


class MethodNotAllowed(ApplicationError):
    code = "method_not_allowed"
    default_message = "This method is not allowed here."


class NotAcceptable(ApplicationError):
    code = "not_acceptable"
    default_message = "None of the media types in Accept can be produced."


class LengthRequired(ApplicationError):
    code = "length_required"
    default_message = "A request body needs a Content-Length."


class RequestTooLarge(ApplicationError):
    code = "request_too_large"

    def __init__(self, message: str | None = None, *, extra: Mapping[str, Any] | None = None) -> None:
        limit = settings.REQUEST_MAX_BYTES
        size = f"{limit // 1024 // 1024} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
        super().__init__(message or f"The request is larger than {size}.", extra=extra)


class UnsupportedMediaType(ApplicationError):
    code = "unsupported_media_type"
    default_message = "The request body's media type is not supported."


class InternalError(ApplicationError):
    """A bug. Never raised on purpose: adapters answer it for any exception `translate` does not know."""

    code = "internal"
    default_message = "Internal server error."


@dataclass(frozen=True, slots=True)
class Outcome:
    """How each protocol says one error code.

    `graphql_code` is None where the error happens before GraphQL runs, in the HTTP transport: the
    GraphQL endpoint then answers with the HTTP status and a problem-details body (`core.problems`),
    as REST does (docs/api/errors.md, "GraphQL"). `grpc_status` (a `grpc.StatusCode` name) is None
    where gRPC has no such condition (HTTP framing and media types).
    """

    http_status: int
    graphql_code: str | None
    grpc_status: str | None


OUTCOMES: Mapping[str, Outcome] = MappingProxyType(
    {
        InvalidInput.code: Outcome(400, "BAD_USER_INPUT", "INVALID_ARGUMENT"),
        NotAuthenticated.code: Outcome(401, "UNAUTHENTICATED", "UNAUTHENTICATED"),
        PermissionDenied.code: Outcome(403, "FORBIDDEN", "PERMISSION_DENIED"),
        NotFound.code: Outcome(404, "NOT_FOUND", "NOT_FOUND"),
        StaleVersion.code: Outcome(412, "PRECONDITION_FAILED", "ABORTED"),
        IdempotencyKeyInFlight.code: Outcome(409, "CONFLICT", "ABORTED"),
        IdempotencyKeyReused.code: Outcome(422, "CONFLICT", "INVALID_ARGUMENT"),
        RateLimited.code: Outcome(429, "RATE_LIMITED", "RESOURCE_EXHAUSTED"),
        TooManyStreams.code: Outcome(429, "TOO_MANY_STREAMS", "RESOURCE_EXHAUSTED"),
        SlowConsumer.code: Outcome(429, "SLOW_CONSUMER", "RESOURCE_EXHAUSTED"),
        ServiceUnavailable.code: Outcome(503, "UNAVAILABLE", "UNAVAILABLE"),
        TimeBudgetExceeded.code: Outcome(504, "TIMEOUT", "DEADLINE_EXCEEDED"),
        MalformedRequest.code: Outcome(400, None, "INVALID_ARGUMENT"),
        BadRequest.code: Outcome(400, None, None),
        MethodNotAllowed.code: Outcome(405, None, None),
        NotAcceptable.code: Outcome(406, None, None),
        LengthRequired.code: Outcome(411, None, None),
        RequestTooLarge.code: Outcome(413, None, "RESOURCE_EXHAUSTED"),
        UnsupportedMediaType.code: Outcome(415, None, None),
        InternalError.code: Outcome(500, "INTERNAL_SERVER_ERROR", "INTERNAL"),
    }
)


def outcome_of(error: ApplicationError) -> Outcome:
    """The row of `error`'s code. A code without a row is a bug: logged, and answered as internal."""
    try:
        return OUTCOMES[error.code]
    except KeyError:
        logger.error("error code %r (%s) has no row in core.errors.OUTCOMES", error.code, type(error).__name__)
        return OUTCOMES[InternalError.code]


# PostgreSQL SQLSTATE for "canceling statement due to statement timeout".
_QUERY_CANCELED = "57014"


def translate(exc: BaseException) -> ApplicationError | None:
    """Return the ApplicationError a foreign exception stands for, or None if it is unexpected.

    Adapters call this before their mapping table, so Django validation errors and database outages
    look the same on every protocol.
    """
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return InvalidInput.for_fields(
                {name: [str(m) for error in errors for m in error.messages] for name, errors in exc.error_dict.items()}
            )
        return InvalidInput(" ".join(str(m) for m in exc.messages))
    if isinstance(exc, DatabaseError) and getattr(exc.__cause__, "sqlstate", None) == _QUERY_CANCELED:
        return TimeBudgetExceeded()
    if isinstance(exc, OperationalError | InterfaceError):
        # An outage the client is told about (503 and the like): logged once per outage, not per request.
        reason = str(exc).strip().partition("\n")[0]
        outages.unavailable("database", f"database unavailable: {type(exc).__name__}: {reason}")
        return ServiceUnavailable()
    return None
