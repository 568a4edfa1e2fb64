"""The size of a request, CORS (django-cors-headers) and response compression."""

from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured

from config.env import env, integer

# The largest request (docs/architecture.md, "Limits"): an HTTP body (larger: 413) and a gRPC message
# (larger: RESOURCE_EXHAUSTED, unless GRPC_MAX_RECEIVE_MESSAGE_BYTES says otherwise).
REQUEST_MAX_BYTES = integer("REQUEST_MAX_BYTES", 1024 * 1024, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BYTES

CORS_ENABLED = env.bool("CORS_ENABLED", default=True)
# Exact origins ("https://app.example.com"); none by default, so browsers on other origins get no access.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_ALL_ORIGINS = env.bool("CORS_ALLOW_ALL_ORIGINS", default=False)
# Cookies cross origins only to origins named one by one, never with "allow all".
CORS_ALLOW_CREDENTIALS = env.bool("CORS_ALLOW_CREDENTIALS", default=False)
if CORS_ALLOW_CREDENTIALS and CORS_ALLOW_ALL_ORIGINS:
    raise ImproperlyConfigured("CORS_ALLOW_CREDENTIALS needs explicit CORS_ALLOWED_ORIGINS, not allow-all.")
CORS_URLS_REGEX = r"^/(api|graphql)/.*$"
CORS_ALLOW_HEADERS = (*default_headers, "idempotency-key", "if-match", "if-none-match", "x-api-key", "x-request-id")
CORS_EXPOSE_HEADERS = [
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Request-ID",
    "Idempotent-Replayed",
]
CORS_PREFLIGHT_MAX_AGE = 600

# gzip for responses of at least this many bytes when the client accepts it.
COMPRESSION_ENABLED = env.bool("COMPRESSION_ENABLED", default=True)
COMPRESSION_MIN_BYTES = integer("COMPRESSION_MIN_BYTES", 1024, minimum=0)
