"""GraphQL error mapping: every error gets `extensions.code` (DESIGN §5); unexpected ones are masked.

One table maps the protocol-neutral `core.errors` codes. Errors of the document itself follow
Apollo's codes: GRAPHQL_PARSE_FAILED (syntax), GRAPHQL_VALIDATION_FAILED (unknown fields, limits of
depth, aliases and tokens, introspection when it is off), BAD_USER_INPUT (variables of the wrong
type or enum value). Anything else is logged with its traceback under the request id and reaches
the client as INTERNAL_SERVER_ERROR with a generic message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql.error import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension

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


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def error_payload(app_error: errors.ApplicationError) -> tuple[str, dict[str, Any]]:
    """(message, extensions) of a domain error: `code`, plus its detail in camelCase."""
    extensions: dict[str, Any] = {"code": CODE_BY_ERROR.get(app_error.code, "BAD_USER_INPUT")}
    for name, value in app_error.extra.items():
        if name == "fields":  # GraphQL names are camelCase, and the list arguments have their own names
            value = {_ARGUMENT_NAMES.get(field, _camel(field)): messages for field, messages in value.items()}
        extensions[_camel(name)] = value
    return app_error.message, extensions


class ErrorCodes(SchemaExtension):
    """Rewrites every error of a result with its `extensions.code`."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._map(error) for error in result.errors]

    def _map(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        # graphql-core wraps a variable or argument that does not fit its type in a GraphQLError
        # (strawberry's scalars in a StrawberryInputCoercionError): the client's input, not our fault.
        if original is None or isinstance(original, GraphQLError | StrawberryInputCoercionError):
            if error.message.startswith("Syntax Error"):
                code = "GRAPHQL_PARSE_FAILED"
            elif error.message.startswith("Variable '$") or original is not None:
                code = "BAD_USER_INPUT"  # variable values that do not fit their declared types
            else:
                code = "GRAPHQL_VALIDATION_FAILED"
            return self._copy(error, error.message, {"code": code})
        app_error = errors.translate(original)
        if app_error is None:
            logger.error("unexpected error in GraphQL resolver at %s", error.path, exc_info=original)
            return self._copy(error, INTERNAL_MESSAGE, {"code": INTERNAL})
        message, extensions = error_payload(app_error)
        return self._copy(error, message, extensions)

    @staticmethod
    def _copy(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
        return GraphQLError(
            message, nodes=error.nodes, source=error.source, positions=error.positions, path=error.path,
            extensions=extensions,
        )  # fmt: skip
