"""GraphQL (strawberry-graphql-django) switches and limits."""

from config.env import DEBUG, env

GRAPHQL_ENABLED = env.bool("GRAPHQL_ENABLED", default=True)
GRAPHIQL_ENABLED = env.bool("GRAPHIQL_ENABLED", default=DEBUG)
# Off in production unless switched on: they hand an attacker the schema for free.
GRAPHQL_INTROSPECTION_ENABLED = env.bool("GRAPHQL_INTROSPECTION_ENABLED", default=DEBUG)
GRAPHQL_FIELD_SUGGESTIONS_ENABLED = env.bool("GRAPHQL_FIELD_SUGGESTIONS_ENABLED", default=DEBUG)
GRAPHQL_MAX_DEPTH = env.int("GRAPHQL_MAX_DEPTH", default=8)
GRAPHQL_MAX_ALIASES = env.int("GRAPHQL_MAX_ALIASES", default=15)
GRAPHQL_MAX_TOKENS = env.int("GRAPHQL_MAX_TOKENS", default=2000)
# Parsed and validated documents kept per process (repeated operations skip both steps).
GRAPHQL_DOCUMENT_CACHE_SIZE = env.int("GRAPHQL_DOCUMENT_CACHE_SIZE", default=256)
