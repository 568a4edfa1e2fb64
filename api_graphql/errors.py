"""GraphQL error mapping: every error gets `extensions.code` (docs/api/errors.md); unexpected ones are masked.

Domain errors get the code of the one table, `core.errors.OUTCOMES`. Errors of the document itself follow
Apollo's codes: GRAPHQL_PARSE_FAILED (syntax), GRAPHQL_VALIDATION_FAILED (unknown fields, limits of
depth, aliases and tokens, introspection when it is off), BAD_USER_INPUT (variables of the wrong
type or enum value). Anything else is logged with its traceback under the request id and reaches
the client as INTERNAL_SERVER_ERROR with a generic message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.error import GraphQLError, GraphQLSyntaxError
from graphql.language import VariableDefinitionNode
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.utils.str_converters import to_camel_case

from core import errors

logger = logging.getLogger(__name__)

INTERNAL = errors.OUTCOMES[errors.InternalError.code].graphql_code
# Domain names of list parameters -> the GraphQL arguments that carry them.
_ARGUMENT_NAMES = {"limit": "first", "cursor": "after"}
INTERNAL_MESSAGE = "Internal server error."
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


def error_payload(app_error: errors.ApplicationError) -> tuple[str, dict[str, Any]]:
    """(message, extensions) of a domain error: `code`, plus its detail in camelCase."""
    code = errors.outcome_of(app_error).graphql_code
    if code is None:  # an error of the HTTP transport cannot come from a resolver: a bug
        logger.error("%s raised inside GraphQL, where it has no code", type(app_error).__name__)
        return INTERNAL_MESSAGE, {"code": INTERNAL}
    extensions: dict[str, Any] = {"code": code}
    for name, value in app_error.extra.items():
        if name == "fields":  # GraphQL names are camelCase, and the list arguments have their own names
            value = {_ARGUMENT_NAMES.get(field, to_camel_case(field)): messages for field, messages in value.items()}
        extensions[to_camel_case(name)] = value
    return app_error.message, extensions


class MappedError(GraphQLError):
    """An error ErrorCodes has given its code: never mapped again."""


class ErrorCodes:
    """Rewrites every error of a result with its `extensions.code`; one per operation, driven by the
    schema's extension (api_graphql.schema.OperationExtension)."""

    def __init__(self) -> None:
        # The document's validation errors (unknown fields, limits, introspection when off, wrong
        # literal argument values), told apart from errors that come later by their identity.
        self.validation_errors: set[int] = set()

    def map_all(self, result: object) -> None:
        """strawberry's result, or graphql-core's (which a synchronous execution leaves in the context)."""
        if not isinstance(result, ExecutionResult | GraphQLExecutionResult) or not result.errors:
            return
        result.errors = [self._map(error) for error in result.errors]

    def mapped(self, error: GraphQLError) -> GraphQLError:
        """One error with its code, as `map_all` gives each error of a result."""
        return self._map(error)

    def _map(self, error: GraphQLError) -> GraphQLError:
        if isinstance(error, MappedError):  # a subscription's last result, mapped when it was sent
            return error
        original = error.original_error
        if isinstance(error, GraphQLSyntaxError):
            # The token limit aborts the parser with a syntax error too; it is a limit of the document.
            # Told by graphql-core's message: a real syntax error early in a long document is a parse error.
            over_limit = error.message.startswith(_TOKEN_LIMIT_MESSAGE)
            code = "GRAPHQL_VALIDATION_FAILED" if over_limit else "GRAPHQL_PARSE_FAILED"
            return self._copy(error, self._public(error.message), {"code": code})
        if id(error) in self.validation_errors or isinstance(original, CannotGetOperationTypeError):
            # The second: over the websocket, an `operationName` that names no operation of the
            # document (over HTTP the view refuses that before anything runs).
            return self._copy(error, self._public(error.message), {"code": "GRAPHQL_VALIDATION_FAILED"})
        # Variable values that do not fit their declared types: graphql-core reports them on the
        # variable's definition, wrapping strawberry's scalar errors (StrawberryInputCoercionError).
        if isinstance(original, StrawberryInputCoercionError) or any(
            isinstance(node, VariableDefinitionNode) for node in error.nodes or ()
        ):
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
        return MappedError(
            message, nodes=error.nodes, source=error.source, positions=error.positions, path=error.path,
            extensions=extensions,
        )  # fmt: skip


# How graphql-core's parser begins the syntax error of its `max_tokens` limit; every other syntax
# error begins "Syntax Error: Unexpected" or "Syntax Error: Expected".
_TOKEN_LIMIT_MESSAGE = "Syntax Error: Document contains more than "
