"""Protocol-neutral errors.

Domain code raises these; each adapter (REST, GraphQL, gRPC) owns one table that maps `code` to its
protocol's idiom (docs/api/errors.md). No HTTP status lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError


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


class ServiceUnavailable(ApplicationError):
    code = "unavailable"
    default_message = "The service is temporarily unavailable. Try again later."


class TimeBudgetExceeded(ApplicationError):
    code = "timeout"
    default_message = "The request took longer than its time budget."


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
        return ServiceUnavailable()
    return None
