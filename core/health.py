"""Health checks (docs/operations.md, "Health"): readiness for the HTTP probes (config.views) and the
database check of the gRPC health service (api_grpc.server).

- `/healthz` — the process answers. Touches nothing, so a dead database never restarts the pods.
- `/readyz` — can this process serve? The database answers `SELECT 1`, every migration is applied,
  and the cache's state. 503 when the database or the migrations fail, naming the component.
  A dead cache does not make the service unready: every request is still served, from the database
  (core.cache fails open), and with a cache shared by all replicas "unready" would take every replica
  out of the load balancer at once. It is reported as `degraded`.
- `/health` — the same checks plus the version and which concerns are switched on. Same status code.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from core import outages
from core.cache import safe_cache
from core.db import time_budget
from core.errors import TimeBudgetExceeded
from observability import metrics, tracing

logger = logging.getLogger(__name__)

OK, UNAVAILABLE, DEGRADED, DISABLED, UNKNOWN = "ok", "unavailable", "degraded", "disabled", "unknown"

_migrations_applied = False  # once true in a process it stays true: a deploy runs a new process


def check_database() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with time_budget(settings.HEALTH_CHECK_TIMEOUT), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except (DatabaseError, TimeBudgetExceeded) as exc:
        # TimeBudgetExceeded: the database answered, but later than the check may wait (a slow
        # connect, right after a restart): for a probe that is the database failing, not an error.
        connection.close()  # the next request reconnects instead of reusing a broken connection
        # Once per outage, not once per probe (core.outages).
        outages.unavailable("database", f"readiness: database unavailable: {type(exc).__name__}")
        return {"status": UNAVAILABLE, "error": type(exc).__name__}
    outages.available("database")
    return {"status": OK, "vendor": connection.vendor, "duration_ms": round((time.perf_counter() - started) * 1000, 2)}


def check_migrations() -> dict[str, Any]:
    global _migrations_applied
    if _migrations_applied:
        return {"status": OK}
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        connection.close()
        return {"status": UNAVAILABLE, "error": type(exc).__name__}
    if pending:
        names = [f"{migration.app_label}.{migration.name}" for migration, _ in pending]
        return {"status": UNAVAILABLE, "error": "unapplied migrations", "pending": names[:20]}
    _migrations_applied = True
    return {"status": OK}


def check_cache() -> dict[str, Any]:
    """A write and a read of a key of this check's own, straight to the backend (safe_cache would
    swallow the fault this check is looking for)."""
    backend_name = "redis" if settings.REDIS_URL else "local-memory"
    if not settings.CACHE_ENABLED:
        return {"status": DISABLED, "backend": backend_name}
    key, value = f"readyz:{os.getpid()}", uuid.uuid4().hex
    try:
        safe_cache.backend.set(key, value, timeout=10)
        if safe_cache.backend.get(key) != value:
            raise RuntimeError("the value read back differs")
    except Exception as exc:
        outages.unavailable("cache", f"readiness: cache unavailable: {type(exc).__name__}")
        return {"status": DEGRADED, "backend": backend_name, "error": type(exc).__name__}
    outages.available("cache")
    return {"status": OK, "backend": backend_name}


def readiness() -> tuple[bool, dict[str, dict[str, Any]]]:
    database = check_database()
    components = {
        "database": database,
        "migrations": check_migrations()
        if database["status"] == OK
        else {"status": UNKNOWN, "error": "no database"},  # not checked: the database is the failure
        "cache": check_cache(),
    }
    ready = all(components[name]["status"] == OK for name in ("database", "migrations"))
    return ready, components


def overall_status(ready: bool, components: dict[str, dict[str, Any]]) -> str:
    if not ready:
        return UNAVAILABLE
    return DEGRADED if any(c["status"] == DEGRADED for c in components.values()) else OK


def concerns() -> dict[str, Any]:
    """Which concerns this process runs with (each one is a switch: docs/configuration.md)."""
    return {
        "graphql": settings.GRAPHQL_ENABLED,
        "grpc": settings.GRPC_ENABLED,
        "cache": settings.CACHE_ENABLED,
        "metrics": settings.METRICS_ENABLED,
        "tracing": tracing.enabled(),
        "tracing_exporters": tracing.exporter_names() if tracing.enabled() else [],
        "rate_limits": settings.RATE_LIMITS_ENABLED,
        "cors": settings.CORS_ENABLED,
        "compression": settings.COMPRESSION_ENABLED,
        "metrics_multiprocess": metrics.multiprocess_directory() is not None,
    }
