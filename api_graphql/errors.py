"""GraphQL error mapping: every error gets `extensions.code` (docs/api/errors.md); unexpected ones are masked.

One table maps the protocol-neutral `core.errors` codes. Errors of the document itself follow
Apollo's codes: GRAPHQL_PARSE_FAILED (syntax), GRAPHQL_VALIDATION_FAILED (unknown fields, limits of
depth, aliases and tokens, introspection when it is off), BAD_USER_INPUT (variables of the wrong
type or enum value). Anything else is logged with its traceback under the request id and reaches
the client as INTERNAL_SERVER_ERROR with a generic message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from graphql.error import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension
from strawberry.utils.str_converters import to_camel_case

from core import errors

logger = logging.getLogger(__name__)

CODE_BY_ERROR: dict[str, str] = {
    errors.InvalidInput.code: "BAD_USER_INPUT",
    errors.NotAuthenticated.code: "UNAUTHENTICATED",
    errors.PermissionDenied.code: "FORBIDDEN",
    errors.NotFound.code: "NOT_FOUND",
    errors.StaleVersion.code: "PRECONDITION_FAILED",
    errors.IdempotencyKeyReused.code: "CONFLICT",
    errors.IdempotencyKeyInFlight.code: "CONFLICT",
    errors.RateLimited.code: "RATE_LIMITED",
    errors.ServiceUnavailable.code: "UNAVAILABLE",
    errors.TimeBudgetExceeded.code: "TIMEOUT",
}
INTERNAL = "INTERNAL_SERVER_ERROR"
# Domain names of list parameters -> the GraphQL arguments that carry them.
_ARGUMENT_NAMES = {"limit": "first", "cursor": "after"}
INTERNAL_MESSAGE = "Internal server error."
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


def error_payload(app_error: errors.ApplicationError) -> tuple[str, dict[str, Any]]:
    """(message, extensions) of a domain error: `code`, plus its detail in camelCase."""
    extensions: dict[str, Any] = {"code": CODE_BY_ERROR.get(app_error.code, "BAD_USER_INPUT")}
    for name, value in app_error.extra.items():
        if name == "fields":  # GraphQL names are camelCase, and the list arguments have their own names
            value = {_ARGUMENT_NAMES.get(field, to_camel_case(field)): messages for field, messages in value.items()}
        extensions[to_camel_case(name)] = value
    return app_error.message, extensions


class ErrorCodes(SchemaExtension):
    """Rewrites every error of a result with its `extensions.code`."""

    def __init__(self) -> None:
        super().__init__()
        self._validation_errors: set[int] = set()

    def on_validate(self) -> Iterator[None]:
        yield
        # The document's validation errors (unknown fields, limits, introspection when off, wrong
        # literal argument values), told apart from errors that come later by their identity.
        self._validation_errors = {id(error) for error in self.execution_context.pre_execution_errors or ()}

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._map(error) for error in result.errors]

    def _map(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if error.message.startswith("Syntax Error"):
            # The token limit aborts the parser with a syntax error; it is a limit of the document.
            code = "GRAPHQL_VALIDATION_FAILED" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
            return self._copy(error, self._public(error.message), {"code": code})
        if id(error) in self._validation_errors:
            return self._copy(error, self._public(error.message), {"code": "GRAPHQL_VALIDATION_FAILED"})
        # Variable values that do not fit their declared types: graphql-core reports "Variable '$x'
        # got invalid value…", wrapping strawberry's scalar errors (StrawberryInputCoercionError).
        if error.message.startswith("Variable '$") or isinstance(original, StrawberryInputCoercionError):
            return self._copy(error, self._public(error.message), {"code": "BAD_USER_INPUT"})
        app_error = errors.translate(original) if original is not None else None
        if app_error is None:
            logger.error("unexpected GraphQL error at %s: %s", error.path, error.message, exc_info=original)
            return self._copy(error, INTERNAL_MESSAGE, {"code": INTERNAL})
        message, extensions = error_payload(app_error)
        return self._copy(error, message, extensions)

    @staticmethod
    def _public(message: str) -> str:
        """graphql-core suggests names ("Did you mean 'title'?") for arguments, enum values and input
        fields too, which strawberry's switch does not cover; with suggestions off, drop them all."""
        if settings.GRAPHQL_FIELD_SUGGESTIONS_ENABLED:
            return message
        return _SUGGESTION.sub("", message)

    @staticmethod
    def _copy(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
        return GraphQLError(
            message, nodes=error.nodes, source=error.source, positions=error.positions, path=error.path,
            extensions=extensions,
        )  # fmt: skip
