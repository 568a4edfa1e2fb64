"""Django REST framework, the OpenAPI schema, and the rate limits every protocol shares."""

from config.env import DEBUG, env, integer

REST_FRAMEWORK = {
    # Credentials first: its WWW-Authenticate header turns "not authenticated" into 401 instead of 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api_rest.auth.CredentialsAuthentication",  # a bearer token or an API key (core.auth)
        # Same-origin only: the admin and the browsable API. CSRF is enforced on unsafe methods.
        "api_rest.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api_rest.throttling.RateLimitThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # DRF's negotiation, its answer remembered per Accept header and format (api_rest/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api_rest.negotiation.RememberedNegotiation",
    "DEFAULT_PARSER_CLASSES": ["api_rest.parsers.BoundedJSONParser"],  # JSON, nested 64 levels at most
    "EXCEPTION_HANDLER": "api_rest.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# /api/schema/, /api/docs/ (Swagger UI) and /api/redoc/; off: 404. Off in production unless switched
# on, like GraphiQL and introspection: the schema is a map of the API for anyone who asks.
API_DOCS_ENABLED = env.bool("API_DOCS_ENABLED", default=DEBUG)

SPECTACULAR_SETTINGS = {
    "TITLE": "taskhub API",
    "DESCRIPTION": "Tasks over REST. Errors are RFC 9457 problem details (application/problem+json).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc come from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Closed objects and the links of a created task (api_rest/schema.py), after drf-spectacular's own hook.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "api_rest.schema.postprocess"],
}

# Rate limits: each scope has a per-minute and a per-hour window, counted in the cache
# (Redis when configured, so every process shares the counters). "N/m,M/h" in the environment.
RATE_LIMITS_ENABLED = env.bool("RATE_LIMITS_ENABLED", default=True)
RATE_LIMITS = {
    "anon": env.list("RATE_LIMIT_ANON", default=["60/m", "1000/h"]),
    "user": env.list("RATE_LIMIT_USER", default=["600/m", "10000/h"]),
    "token": env.list("RATE_LIMIT_TOKEN", default=["10/m", "100/h"]),
    # Password attempts per username, from any address (docs/architecture.md, "Rate limits").
    "login_user": env.list("RATE_LIMIT_LOGIN_USER", default=["10/m", "100/h"]),
}

# Every password login (token endpoint, admin, browsable API) goes through core.ratelimit.check_login.
AUTHENTICATION_BACKENDS = ["core.backends.RateLimitedModelBackend"]

# Idempotency-Key records are kept this long (docs/api/rest.md, "Idempotency").
IDEMPOTENCY_TTL = integer("IDEMPOTENCY_TTL", 86_400, minimum=1)
# A key whose first request has not finished after this long is taken as abandoned.
IDEMPOTENCY_IN_FLIGHT_TIMEOUT = integer("IDEMPOTENCY_IN_FLIGHT_TIMEOUT", 60, minimum=1)
