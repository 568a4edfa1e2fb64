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

import contextlib
import logging
import os
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.migrations.executor import MigrationExecutor

from core import outages
from core.cache import safe_cache
from core.db import shut_down_socket
from observability import metrics, tracing

logger = logging.getLogger(__name__)

OK, UNAVAILABLE, DEGRADED, DISABLED, UNKNOWN = "ok", "unavailable", "degraded", "disabled", "unknown"

_migrations_applied = False  # once true in a process it stays true: a deploy runs a new process


class _DatabaseCheck(threading.Thread):
    """One `SELECT 1` on a thread and a connection of its own, closed when it ends.

    Its callers wait for it until `deadline` (HEALTH_CHECK_TIMEOUT), never longer: a database that
    accepts a connection and then says nothing (a stall, a partition) leaves a statement waiting for
    as long as TCP does, and no server-side timeout ends a wait for an answer that never comes.
    A check its callers gave up on is abandoned: its connection's socket is shut down, so whatever it
    waits on (the statement, or the statements Django runs on a new connection) fails at once and the
    thread ends; a connect still under way ends within DATABASE_CONNECT_TIMEOUT.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(name="health-database", daemon=True)
        self.deadline = time.monotonic() + timeout
        self.result: dict[str, Any] | None = None
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._db: Any = None  # this thread's connection wrapper, until it is closed

    def run(self) -> None:
        started = time.perf_counter()
        if connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
            # Its attempts are made even while a request's is waiting on a server that does not answer:
            # bounded by the deadline, they notice the server answering again at once.
            from core.postgresql.base import always_attempt

            always_attempt()
        with self._lock:
            self._db = connections[DEFAULT_DB_ALIAS]
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            self.result = {
                "status": OK,
                "vendor": connection.vendor,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
        except DatabaseError as exc:
            self.result = {"status": UNAVAILABLE, "error": type(exc).__name__}
        finally:
            with self._lock:
                self._db = None  # before the close: `abandon` never touches a descriptor reused since
            with contextlib.suppress(DatabaseError):
                connection.close()
            self.finished.set()

    def abandon(self) -> None:
        """No caller waits any more: end what the check waits on by shutting its connection's socket
        down (on a duplicate of the descriptor: the connection's own close is unaffected). Asked again
        by every later probe while the thread lives, as a connect may have completed since."""
        with self._lock:
            raw = self._db.connection if self._db is not None else None
            if raw is not None:
                shut_down_socket(raw)  # SQLite's connection has no socket: nothing happens


_checks_lock = threading.Lock()
_current: _DatabaseCheck | None = None  # the check callers wait for: at most one
_set_aside: _DatabaseCheck | None = None  # one that outlived its deadline and may still be connecting


def _check_to_wait_for() -> _DatabaseCheck | None:
    """The check in progress, or a new one; None when two are stuck (one past its deadline, one set
    aside before it still running): threads never pile up behind a database that does not answer."""
    global _current, _set_aside
    with _checks_lock:
        current = _current
        if current is not None and not current.finished.is_set():
            if time.monotonic() < current.deadline:
                return current  # a probe of the other protocol started it: its answer serves both
            current.abandon()
            if _set_aside is not None and not _set_aside.finished.is_set():
                _set_aside.abandon()
                return None
            _set_aside = current
        _current = _DatabaseCheck(settings.HEALTH_CHECK_TIMEOUT)
        _current.start()
        return _current


def _forget_checks() -> None:
    global _current, _set_aside
    _current = _set_aside = None  # a forked child has none of its parent's threads


os.register_at_fork(after_in_child=_forget_checks)


def check_database() -> dict[str, Any]:
    """`SELECT 1` within HEALTH_CHECK_TIMEOUT, never longer (`_DatabaseCheck`); the /readyz and /health
    views and the gRPC health service's checker all ask here."""
    check = _check_to_wait_for()
    if check is not None and check.finished.wait(max(0.0, check.deadline - time.monotonic())):
        result = check.result or {"status": UNAVAILABLE, "error": "unknown"}
    else:
        # The database did not answer in time: for a probe that is the database failing, not an error.
        if check is not None:
            check.abandon()
        result = {"status": UNAVAILABLE, "error": "TimeBudgetExceeded"}
    if result["status"] != OK:
        # Once per outage, not once per probe (core.outages).
        outages.unavailable("database", f"readiness: database unavailable: {result['error']}")
    else:
        outages.available("database")
    return dict(result)  # a copy: one check's result may answer several callers


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
