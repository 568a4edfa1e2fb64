"""GraphQL (strawberry-graphql-django) switches and limits."""

from config.env import DEBUG, env, integer

GRAPHQL_ENABLED = env.bool("GRAPHQL_ENABLED", default=True)
GRAPHIQL_ENABLED = env.bool("GRAPHIQL_ENABLED", default=DEBUG)
# Off in production unless switched on: they hand an attacker the schema for free.
GRAPHQL_INTROSPECTION_ENABLED = env.bool("GRAPHQL_INTROSPECTION_ENABLED", default=DEBUG)
GRAPHQL_FIELD_SUGGESTIONS_ENABLED = env.bool("GRAPHQL_FIELD_SUGGESTIONS_ENABLED", default=DEBUG)
GRAPHQL_MAX_DEPTH = integer("GRAPHQL_MAX_DEPTH", 8, minimum=1)
GRAPHQL_MAX_ALIASES = integer("GRAPHQL_MAX_ALIASES", 15, minimum=0)
GRAPHQL_MAX_TOKENS = integer("GRAPHQL_MAX_TOKENS", 2000, minimum=1)
# Parsed and validated documents kept per process (repeated operations skip both steps).
GRAPHQL_DOCUMENT_CACHE_SIZE = integer("GRAPHQL_DOCUMENT_CACHE_SIZE", 256, minimum=0)
