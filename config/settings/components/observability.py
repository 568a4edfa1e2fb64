"""Metrics, tracing and health. Tracing reads only the standard OTEL_* variables itself
(observability/tracing.py); metrics' multiprocess mode reads PROMETHEUS_MULTIPROC_DIR itself."""

import tomllib

from config.env import BASE_DIR, env, integer, seconds

# /metrics, the request metrics and django-prometheus' database and cache wrappers.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
# The bearer token of /metrics, and of /health's details (docs/operations.md, "Metrics"): requests
# must send `Authorization: Bearer <token>`. Without one, /metrics is open only with DJANGO_DEBUG on,
# and refused (403) otherwise, so a production deploy never serves its metrics to the world by omission.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# The gRPC server's own /metrics port (0: none). Not needed when it shares PROMETHEUS_MULTIPROC_DIR
# with the HTTP workers: then the HTTP /metrics already sums the gRPC process (docs/operations.md, "Metrics").
GRPC_METRICS_PORT = integer("GRPC_METRICS_PORT", 0, minimum=0, maximum=65535)
# Distinct GraphQL operation names a process labels by name; later ones are counted as "<type> other".
GRAPHQL_METRICS_MAX_OPERATIONS = integer("GRAPHQL_METRICS_MAX_OPERATIONS", 100, minimum=0)
# django-prometheus would read the migration state at start-up, which breaks `manage.py` with the
# database down; /readyz reports unapplied migrations instead.
PROMETHEUS_EXPORT_MIGRATIONS = False

# Seconds /readyz, /health and the gRPC health service give the database check (the cache check is
# bounded by the Redis timeouts).
HEALTH_CHECK_TIMEOUT = seconds("HEALTH_CHECK_TIMEOUT", 2.0, strict=True)

# /health: the version of the running code.
TASKHUB_VERSION = (
    env.str("TASKHUB_VERSION", default="")
    or tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]["version"]
)
