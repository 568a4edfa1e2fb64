"""The database around the domain: bounded retry of transient errors, time budgets, and the upkeep
of a thread's connections around each request and call (docs/architecture.md, "Timeouts and retries").
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import random
import socket
import threading
import time
from asyncio import _get_running_loop  # asyncio's C function: None outside a loop, without raising
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import django.db
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from core import outages
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
    if getattr(exc.__cause__, "connection_not_attempted", False):
        return False  # the server answers no attempt: core/postgresql/base.py
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


# Backoff between tries: a random wait between half and all of min(cap, first * 2**try). Capped so
# that a database back after a restart (connections fail for ~0.2 s: docs/architecture.md, "Timeouts
# and retries") is noticed within a quarter of a second; jittered so replicas do not retry in step.
_FIRST_BACKOFF = 0.025
_MAX_BACKOFF = 0.25

# The deadline of the current `time_budget` (monotonic seconds), so a retry never sleeps past it.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("db_deadline", default=None)


def retry_transient(func: Callable[P, R]) -> Callable[P, R]:
    """Rerun `func` (which must open and commit its own transaction) on a transient error.

    Tries again, after a capped jittered exponential backoff, while less than DATABASE_RETRY_WINDOW
    seconds have passed since the first try and the caller's time budget (a gRPC deadline) leaves
    room for the wait; then the last error is raised (TimeBudgetExceeded when it is the time budget
    that leaves no room). Inside an outer transaction nothing is retried: only the outermost caller
    can rerun a transaction.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = func(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                if connection.in_atomic_block or not is_transient(exc):
                    raise
                pause = random.uniform(0.5, 1.0) * min(_MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (attempt - 1))
                resume = time.monotonic() + pause
                if resume - started > settings.DATABASE_RETRY_WINDOW:
                    raise
                deadline = _deadline.get()
                if deadline is not None and resume >= deadline:
                    # The caller's time, not the database, is what ran out: answered as a timeout.
                    raise TimeBudgetExceeded("The deadline passed while the work waited to be retried.") from exc
                # INFO: a retry is handled; an outage that outlasts the window is logged once (core.outages).
                logger.info("transient database error in %s (try %d): %s", func.__name__, attempt, exc)
                if connection.connection is not None and not connection.is_usable():
                    connection.close()  # the next query opens a fresh connection
                time.sleep(pause)
                continue
            if attempt > 1 or outages.is_down("database"):  # an outage this process saw has ended
                outages.available("database")
            return result

    return wrapper


class time_budget:  # lower case: a context manager used as a function, `with time_budget(...)`
    """Give the database work of the block only the caller's remaining time (gRPC deadlines).

    Every statement first checks the deadline and raises TimeBudgetExceeded once it has passed, so a
    call that waited too long (for a lock, say) rolls back instead of writing after its client gave
    up. `wanted`, if given, is asked too: a call the client cancelled, or that the server's shutdown
    cut off, stops at its next statement (gRPC's `context.is_active`). A cut-off between the last
    statement and COMMIT still commits: Django has no hook before COMMIT. When the budget is shorter
    than the defaults, a single statement is cut short too: PostgreSQL's statement_timeout, SQLite's
    busy_timeout (waiting for the write lock), set before the block's first statement and only if
    one runs (a gRPC call answered from the cache runs none), and set back when the block ends.

    A class rather than a @contextmanager generator: every gRPC call enters one, and a generator's
    frame and its contextlib wrapper cost more than the block's own work on a cache hit.
    """

    __slots__ = ("budget", "db", "outer_deadline")

    def __init__(self, seconds: float | None, *, wanted: Callable[[], bool] | None = None) -> None:
        self.budget: _Budget | None = None
        if seconds is not None or wanted is not None:
            self.budget = _Budget(time.monotonic() + seconds if seconds is not None else None, wanted, seconds)

    def __enter__(self) -> None:
        budget = self.budget
        if budget is None:
            return
        self.outer_deadline = _deadline.set(budget.deadline)
        self.db = _thread_default_connection()  # `connection`, looked up once per thread
        self.db.execute_wrappers.append(budget)  # connection.execute_wrapper(budget), without its generator

    def __exit__(self, *exc_info: object) -> None:
        budget = self.budget
        if budget is None:
            return
        self.db.execute_wrappers.remove(budget)
        _deadline.reset(self.outer_deadline)
        if budget.tightened is not None:  # outside the deadline check: the default must come back regardless
            budget.restore(self.db)


class _Budget:
    """The execute wrapper of one `time_budget`: the deadline and `wanted` checks before each
    statement, and the shorter statement or busy timeout set on the connection before the first."""

    __slots__ = ("deadline", "milliseconds", "tightened", "wanted")

    def __init__(self, deadline: float | None, wanted: Callable[[], bool] | None, seconds: float | None) -> None:
        self.deadline = deadline
        self.wanted = wanted
        # None once known not to be needed (no deadline, or one longer than the default timeout).
        # PostgreSQL's and SQLite's timeouts are 32-bit: a deadline weeks away is no limit either.
        self.milliseconds = min(max(1, int(seconds * 1000)), 2**31 - 1) if seconds is not None else None
        # The DB-API connection whose timeout was lowered (a retry may open another: that one is
        # lowered before its first statement too).
        self.tightened: Any = None

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TimeBudgetExceeded("The deadline passed while the work was running.")
        if self.wanted is not None and not self.wanted():
            raise TimeBudgetExceeded("The call ended (cancelled, or cut off by a shutdown) while the work was running.")
        if self.milliseconds is not None:
            db = context["connection"]
            if db.connection is not self.tightened:
                self.tighten(db)
        return execute(sql, params, many, context)

    def tighten(self, db: Any) -> None:
        tighten = _TIGHTEN.get(db.vendor)
        default = _default_timeout_ms(db)
        unlimited = default == 0 and db.vendor == "postgresql"  # statement_timeout 0: none (SQLite's 0: no wait)
        if tighten is None or self.milliseconds is None or (self.milliseconds >= default and not unlimited):
            self.milliseconds = None
            return
        self.tightened = db.connection  # first: the statement below passes through this wrapper too
        with db.cursor() as cursor:
            cursor.execute(tighten[0] % self.milliseconds)

    def restore(self, db: Any) -> None:
        """Set the default timeout back on the connection that was tightened, if it is still open."""
        if db.connection is not self.tightened:
            return  # closed (and perhaps reopened, with the default) since
        try:
            with db.cursor() as cursor:
                cursor.execute(_TIGHTEN[db.vendor][1] % _default_timeout_ms(db))
        except DatabaseError:
            db.close()  # never hand a connection with a short timeout to the next call


# vendor -> (statement that sets the budget, statement that restores the default)
_TIGHTEN = {
    "postgresql": ("SET statement_timeout = %d", "SET statement_timeout = %d"),
    "sqlite": ("PRAGMA busy_timeout = %d", "PRAGMA busy_timeout = %d"),
}


def _default_timeout_ms(db: Any) -> int:
    if db.vendor == "sqlite":
        return int(float(db.settings_dict.get("OPTIONS", {}).get("timeout", 5)) * 1000)
    return int(settings.DATABASE_STATEMENT_TIMEOUT_MS)


# -- a thread's connections around each request and call ------------------------------------------------

_thread = threading.local()


def _thread_connections() -> Sequence[BaseDatabaseWrapper]:
    """This thread's connection wrappers, one per database alias, found once per thread. Django keeps
    them per thread for the thread's life (`connections` is thread-critical), and its own receivers
    walk them through asgiref's Local three times per request to find the same objects."""
    wrappers: Sequence[BaseDatabaseWrapper] | None = getattr(_thread, "connections", None)
    if wrappers is None:
        wrappers = _thread.connections = connections.all()
    return wrappers


def _thread_default_connection() -> BaseDatabaseWrapper:
    """`connection` (`connections[DEFAULT_DB_ALIAS]`) as the block about to run will use it.

    In a thread that runs no event loop, asgiref's Local is the thread's own storage: the wrapper is
    the same for the thread's life, and is kept here once found (every gRPC call's `time_budget`
    needs it, and asgiref's lookup raises and catches two exceptions: ~11,000 instructions). While
    the thread runs an event loop, the Local is per context: then it is looked up every time."""
    if _get_running_loop() is not None:
        return connections[DEFAULT_DB_ALIAS]
    wrapper: BaseDatabaseWrapper | None = getattr(_thread, "default", None)
    if wrapper is None:
        wrapper = _thread.default = connections[DEFAULT_DB_ALIAS]
    return wrapper


def close_old_connections(**kwargs: object) -> None:
    """Django's `close_old_connections`: each connection this thread has open is closed if it is broken,
    past its CONN_MAX_AGE, or left out of autocommit; the next query opens a new one. Run before and
    after each HTTP request (`serve_requests_of`) and each gRPC call (api_grpc.interceptors)."""
    # _thread_connections(), its lookup inline: every gRPC call runs this twice.
    for wrapper in getattr(_thread, "connections", None) or _thread_connections():
        if wrapper.connection is not None:
            wrapper.close_if_unusable_or_obsolete()


def reset_queries(**kwargs: object) -> None:
    """Django's `reset_queries`: the queries this thread's connections logged (DEBUG, or a query
    capture) are forgotten when a request starts."""
    for wrapper in _thread_connections():
        if wrapper.queries_log:
            wrapper.queries_log.clear()


def serve_requests_of(handler_class: type) -> None:
    """Have requests of `handler_class` (a serving process's WSGI handler: config.wsgi) keep their
    connections with the receivers above instead of Django's, which do the same work through
    asgiref's Local: 6.5% more of a cached GET (docs/architecture.md, "Timeouts and retries").

    Django's receivers are disconnected, and these connected for `handler_class` alone: a request
    sent by any other handler (a test client, which disconnects Django's `close_old_connections`
    around its requests so that it never closes a test's transaction) runs neither."""
    request_started.disconnect(django.db.reset_queries)
    request_started.disconnect(django.db.close_old_connections)
    request_finished.disconnect(django.db.close_old_connections)
    request_started.connect(reset_queries, sender=handler_class)
    request_started.connect(close_old_connections, sender=handler_class)
    request_finished.connect(close_old_connections, sender=handler_class)


def shut_down_socket(raw: Any, *, inode: int | None = None) -> None:
    """Shut down the socket of `raw`, a DB-API connection, on a duplicate of its descriptor (the
    connection's own close is unaffected): whatever waits on it fails at once. With `inode`, only if
    the descriptor is still that socket. Opens nothing; does nothing if `raw` has no socket (closed,
    or SQLite's). The readiness check abandons its stalled connection this way (core.health), and
    the watchdog a wait past its deadline (core/postgresql/base.py)."""
    try:
        duplicate = os.dup(raw.fileno())
    except Exception:
        return
    try:
        sock = socket.socket(fileno=duplicate) if inode is None or os.fstat(duplicate).st_ino == inode else None
    except OSError:
        sock = None
    if sock is None:  # not that socket any more (libpq closed it and the number was reused), or not one
        os.close(duplicate)
        return
    with sock, contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
