"""The GraphQL schema and its safety limits (DESIGN §6 "Limits").

Introspection and field suggestions follow settings (off unless DEBUG or switched on); a schema is
built per combination of those switches, so each keeps its own parser and validation caches.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import strawberry
from django.conf import settings
from graphql.error import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext
from strawberry_django.optimizer import DjangoOptimizerExtension

from api_graphql.errors import ErrorCodes
from api_graphql.mutations import Mutation
from api_graphql.queries import Query


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Logged by ErrorCodes instead: only unexpected errors, once, with their traceback."""


def build_schema(*, introspection: bool = True, field_suggestions: bool = True) -> Schema:
    # Factories: strawberry builds fresh extensions per request. The parser and validation caches
    # live at module level in strawberry (validation keyed by schema), so they persist.
    cache_size = settings.GRAPHQL_DOCUMENT_CACHE_SIZE
    extensions: list[Any] = [
        DjangoOptimizerExtension,
        lambda: QueryDepthLimiter(max_depth=settings.GRAPHQL_MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=settings.GRAPHQL_MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        lambda: ParserCache(maxsize=cache_size),
        lambda: ValidationCache(maxsize=cache_size),
        ErrorCodes,
    ]
    if not introspection:
        extensions.insert(1, lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not field_suggestions),
    )


@lru_cache(maxsize=4)
def _schema_for(introspection: bool, field_suggestions: bool) -> Schema:
    return build_schema(introspection=introspection, field_suggestions=field_suggestions)


def current_schema() -> Schema:
    """The schema for the current settings."""
    return _schema_for(settings.GRAPHQL_INTROSPECTION_ENABLED, settings.GRAPHQL_FIELD_SUGGESTIONS_ENABLED)


# The full schema, for the SDL export (`manage.py graphql_schema`) and its drift test.
schema = build_schema()
