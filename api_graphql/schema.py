"""The GraphQL schema and its safety limits (docs/architecture.md, "Limits").

Introspection and field suggestions follow settings (off unless DEBUG or switched on); a schema is
built per combination of those switches, so each keeps its own parser and validation caches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from functools import lru_cache
from typing import Any

import strawberry
from django.conf import settings
from graphql.error import GraphQLError
from graphql.language import DocumentNode, OperationDefinitionNode
from graphql.utilities import get_operation_ast
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionContext, StreamExecutionResult
from strawberry.types.graphql import OperationType

from api_graphql.context import Context, StreamContext
from api_graphql.documents import SpreadCheck, spread_check
from api_graphql.errors import ErrorCodes
from api_graphql.execution import PlainFieldsExecutionContext
from api_graphql.mutations import Mutation
from api_graphql.queries import Query
from api_graphql.scalars import DATETIME_SCALAR, DateTime
from api_graphql.subscriptions import Subscription
from observability.metrics import graphql_endpoint

AMBIGUOUS_OPERATION = "Must provide operation name if query contains multiple operations."
WEBSOCKET_ONLY = "Subscriptions run over the websocket at /graphql/ (graphql-transport-ws), not over HTTP."
HTTP_ONLY = "Only subscriptions run over the websocket; send queries and mutations over HTTP."


def operation_is_ambiguous(context: ExecutionContext) -> bool:
    """The document holds several operations and the request names none of them.

    The GraphQL spec (GetOperation) makes that a request error; strawberry would run the first
    operation instead (its ExecutionContext falls back to the first operation's name, so the name the
    request sent comes from our Context). `get_operation_ast(document)` finds the operation of a
    request without a name: None when there are several, or none at all.
    """
    document = context.graphql_document
    request_context = context.context
    # Over the websocket the handler has refused that already (api_graphql.websocket), with the name
    # each `subscribe` sent: its context serves every operation of the connection.
    if document is None or isinstance(request_context, StreamContext):
        return False
    if isinstance(request_context, Context) and request_context.operation_name is not None:
        return False
    return get_operation_ast(document) is None and any(
        isinstance(definition, OperationDefinitionNode) for definition in document.definitions
    )


# What strawberry raises through the operation's hooks for its views to answer (a request without a
# query, an operationName that names no operation, a mutation over GET): never mapped here.
_STRAWBERRY_SIGNALS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)

# (schema, document text, token limit, rules) -> the document's validation errors (OperationExtension).
_validated: dict[tuple[Any, ...], list[GraphQLError]] = {}


class OperationExtension(ValidationCache):
    """The schema's one extension, made per operation: every rule around parsing, validation and the
    result (one extension instead of eight: strawberry wraps each hook of each extension in a context
    manager on every request; docs/api/graphql.md, "What a request costs").

    - Limits: the depth, alias and introspection rules join validation; the parser stops at
      GRAPHQL_MAX_TOKENS tokens.
    - Caches: a document is parsed once (strawberry's ParserCache's cache) and validated once per
      set of rules (strawberry's ValidationCache, this class's base, behind a cache keyed by the
      document's text).
    - A document of several operations without `operationName` is refused as a validation error
      (GRAPHQL_VALIDATION_FAILED) before anything runs (docs/api/graphql.md, "Requests").
    - Each kind of operation on its transport, the other refused as a validation error before
      anything runs: subscriptions over the websocket only (a stream needs the connection),
      queries and mutations over HTTP only (there the rate limit and the request log apply, and
      their resolvers are synchronous).
    - Every error of the result gets its `extensions.code` (api_graphql.errors.ErrorCodes).
    - The request's operation (`query TaskList`) names the metrics' `endpoint` label and the
      access log's `route`; "invalid" when the document names no operation to run.
    """

    def __init__(self, *, rules: tuple[Any, ...], cache_size: int, parse: Callable[..., DocumentNode]) -> None:
        super().__init__(maxsize=cache_size)
        self.cache_size = cache_size
        self.rules = rules
        self.parse = parse
        self.error_codes = ErrorCodes()

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, *self.rules)
        context.parse_options["max_tokens"] = settings.GRAPHQL_MAX_TOKENS
        try:
            yield
        except (GraphQLError, *_STRAWBERRY_SIGNALS):
            raise
        except Exception as exc:
            # An exception out of a hook of the operation (a validation rule that raised): strawberry
            # would answer with its text and no code. Mapped as any unexpected error instead: logged
            # with its traceback, INTERNAL_SERVER_ERROR and a generic message to the client.
            raise self.error_codes.mapped(GraphQLError(str(exc), original_error=exc)) from exc
        self.error_codes.map_all(context.result)
        request = getattr(context.context, "request", None)
        if request is not None:
            try:
                operation_type: str | None = context.operation_type.value
            except RuntimeError:  # no document, or no operation of the requested name
                operation_type = None
            if operation_is_ambiguous(context):
                operation_type = None
            request.api_endpoint = graphql_endpoint(operation_type, context.operation_name)

    def on_parse(self) -> Iterator[None]:
        """strawberry's ParserCache would parse outside strawberry's own error handling, so a syntax
        error would escape with no extensions.code. Leave a failing document unparsed instead:
        strawberry then parses it again inside its handling and reports the error like any other."""
        context = self.execution_context
        with suppress(GraphQLError):
            context.graphql_document = self.parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        # The document's errors under the rules, remembered by the text of the document: the
        # ValidationCache's key holds the parsed document, which graphql-core hashes node by node
        # on every request (a third of a small request's CPU). The document is the parse of that
        # text with these options, so the text stands for it.
        key = (context.schema, context.query, context.parse_options.get("max_tokens"), context.validation_rules)
        errors = _validated.get(key)
        if errors is None:
            # strawberry's depth and alias rules (self.rules) see only documents whose fragments
            # spread within bounds: they would raise on some, or take exponential time (api_graphql.documents).
            check = spread_check(context.graphql_document) if context.graphql_document else SpreadCheck.FINE
            if check is SpreadCheck.FINE or check is SpreadCheck.INVALID:
                rules = context.validation_rules
                if check is SpreadCheck.INVALID:  # graphql-core's own rules say what is wrong, without ours
                    context.validation_rules = tuple(rule for rule in rules if rule not in self.rules)
                validation = super().on_validate()  # ValidationCache: validates, or finds it validated
                next(validation)
                errors = context.pre_execution_errors or []
                next(validation, None)
                context.validation_rules = rules
            else:
                errors = [GraphQLError(check.value)]
            if self.cache_size:  # 0: nothing kept, like the parser cache
                if len(_validated) >= self.cache_size:  # bounded like the parser cache: start afresh
                    _validated.clear()
                _validated[key] = errors
        context.pre_execution_errors = errors
        refusals = []
        if operation_is_ambiguous(context):
            refusals.append(GraphQLError(AMBIGUOUS_OPERATION))
        over_websocket = isinstance(context.context, StreamContext)
        with suppress(RuntimeError):  # no operation of the requested name: strawberry says so
            if (context.operation_type is OperationType.SUBSCRIPTION) is not over_websocket:
                refusals.append(GraphQLError(WEBSOCKET_ONLY if not over_websocket else HTTP_ONLY))
        if refusals:  # a new list: the cached one is shared by every request of this document
            context.pre_execution_errors = [*(context.pre_execution_errors or ()), *refusals]
        self.error_codes.validation_errors = {id(error) for error in context.pre_execution_errors or ()}
        yield

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Each result of a subscription, before the websocket sends it (on_operation ends only with
        the stream)."""
        self.error_codes.map_all(result)
        yield


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Logged by ErrorCodes instead: only unexpected errors, once, with their traceback."""


def build_schema(*, introspection: bool = True, field_suggestions: bool = True) -> Schema:
    # The limit rules are built once: QueryDepthLimiter and MaxAliasesLimiter make a new rule class
    # per instance, and a new class per request would miss the validation cache, which is keyed by
    # (schema, document, rules). Validation is the most expensive step of a small query.
    rules: list[Any] = [
        depth_rule(settings.GRAPHQL_MAX_DEPTH, None, None),
        alias_rule(settings.GRAPHQL_MAX_ALIASES),
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    frozen_rules = tuple(rules)
    # strawberry makes the extension afresh for each operation; the parser and validation caches
    # live at module level in strawberry, so they persist across requests.
    cache_size = settings.GRAPHQL_DOCUMENT_CACHE_SIZE
    parse = ParserCache(maxsize=cache_size).cached_parse_document
    extensions: list[Any] = [lambda: OperationExtension(rules=frozen_rules, cache_size=cache_size, parse=parse)]
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions, scalar_map={DateTime: DATETIME_SCALAR}
        ),
        execution_context_class=PlainFieldsExecutionContext,
    )


@lru_cache(maxsize=4)
def _schema_for(introspection: bool, field_suggestions: bool) -> Schema:
    return build_schema(introspection=introspection, field_suggestions=field_suggestions)


def current_schema() -> Schema:
    """The schema for the current settings."""
    return _schema_for(settings.GRAPHQL_INTROSPECTION_ENABLED, settings.GRAPHQL_FIELD_SUGGESTIONS_ENABLED)


# The full schema, for the SDL export (`manage.py graphql_schema`) and its drift test.
schema = build_schema()
