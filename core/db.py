"""Bounded retry of transient database errors (docs/architecture.md, "Timeouts and retries")."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from core.errors import TimeBudgetExceeded

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# PostgreSQL: serialization_failure, deadlock_detected. Both roll the transaction back; rerunning it is safe.
_RETRY_SQLSTATES = {"40001", "40P01"}
# admin_shutdown, crash_shutdown, cannot_connect_now.
_SESSION_ENDED_SQLSTATES = {"57P01", "57P02", "57P03"}


def is_transient(exc: BaseException) -> bool:
    """True for errors that a rerun of the whole transaction can fix."""
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    if sqlstate in _RETRY_SQLSTATES:
        return True
    if isinstance(exc, InterfaceError):
        return True  # the connection was closed under us
    if not isinstance(exc, OperationalError):
        return False
    if connection.vendor == "sqlite":
        return "locked" in str(exc) or "busy" in str(exc)  # another writer holds the file
    if sqlstate is None:
        return True  # psycopg: the connection failed or the server went away mid-query
    # Connection exceptions, and the server ending the session (shutdown, failover, terminated backend).
    return sqlstate.startswith("08") or sqlstate in _SESSION_ENDED_SQLSTATES


def retry_transient(func: Callable[P, R]) -> Callable[P, R]:
    """Rerun `func` (which must open and commit its own transaction) on a transient error.

    Up to DATABASE_RETRY_ATTEMPTS tries with jittered exponential backoff. Inside an outer
    transaction nothing is retried: only the outermost caller can rerun a transaction.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        attempts = max(1, settings.DATABASE_RETRY_ATTEMPTS)
        for attempt in range(1, attempts + 1):
            try:
                return func(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                if connection.in_atomic_block or attempt == attempts or not is_transient(exc):
                    raise
                logger.warning(
                    "transient database error in %s (try %d of %d): %s", func.__name__, attempt, attempts, exc
                )
                if connection.connection is not None and not connection.is_usable():
                    connection.close()  # the next query opens a fresh connection
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


@contextmanager
def time_budget(seconds: float | None, *, wanted: Callable[[], bool] | None = None) -> Iterator[None]:
    """Give the database work of the block only the caller's remaining time (gRPC deadlines).

    Every statement first checks the deadline and raises TimeBudgetExceeded once it has passed, so a
    call that waited too long (for a lock, say) rolls back instead of writing after its client gave
    up. `wanted`, if given, is asked too: a call the client cancelled, or that the server's shutdown
    cut off, stops at its next statement (gRPC's `context.is_active`). A cut-off between the last
    statement and COMMIT still commits: Django has no hook before COMMIT. When the budget is shorter
    than the defaults, a single statement is cut short too: PostgreSQL's statement_timeout, SQLite's
    busy_timeout (waiting for the write lock).
    """
    if seconds is None and wanted is None:
        yield
        return
    deadline = time.monotonic() + seconds if seconds is not None else None

    def check_deadline(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeBudgetExceeded("The deadline passed while the work was running.")
        if wanted is not None and not wanted():
            raise TimeBudgetExceeded("The call ended (cancelled, or cut off by a shutdown) while the work was running.")
        return execute(sql, params, many, context)

    tighten = _TIGHTEN.get(connection.vendor) if seconds is not None else None
    milliseconds = max(1, int(seconds * 1000)) if seconds is not None else 0
    if tighten is not None and milliseconds >= _default_timeout_ms():
        tighten = None
    if tighten is not None:
        with connection.cursor() as cursor:
            cursor.execute(tighten[0] % milliseconds)
    try:
        with connection.execute_wrapper(check_deadline):
            yield
    finally:
        if tighten is not None:  # outside the deadline check: the default must come back regardless
            try:
                with connection.cursor() as cursor:
                    cursor.execute(tighten[1] % _default_timeout_ms())
            except DatabaseError:
                connection.close()  # never hand a connection with a short timeout to the next call


# vendor -> (statement that sets the budget, statement that restores the default)
_TIGHTEN = {
    "postgresql": ("SET statement_timeout = %d", "SET statement_timeout = %d"),
    "sqlite": ("PRAGMA busy_timeout = %d", "PRAGMA busy_timeout = %d"),
}


def _default_timeout_ms() -> int:
    if connection.vendor == "sqlite":
        return int(float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5)) * 1000)
    return int(settings.DATABASE_STATEMENT_TIMEOUT_MS)
