"""Django's PostgreSQL backend (django-prometheus' when METRICS_ENABLED), with two changes for a
server that stops answering: while it answers no connection attempt, a process waits on one attempt
at a time (`Unanswered`); and a wait for an answer that outlasts any answer ends (`Watchdog`).

A server the network lost (a partition, a host gone) answers no attempt: each waits
DATABASE_CONNECT_TIMEOUT, then fails. Without a gate every request thread waits it out in turn, the
requests queued behind them wait longer still, and so does `/healthz`, which the server runs on the
same threads: measured with granian, four threads and 40 requests queued behind a lost database,
`/healthz` did not answer within the liveness probe's 3 s for ~50 s, enough for Kubernetes to
restart pods whose only problem is the database.

So once an attempt has failed after waiting (`SLOW_FAILURE` or more: a server that answers accepts
or refuses within milliseconds), the database counts as not answering, and while it does, one
attempt at a time is made: the others fail at once as "unavailable", like the waiting one will if
nothing answers. Whatever attempt succeeds, or fails at once (the host is back: it refused), ends
that state; a failure of an attempt that began before the server last answered does not start it
again. The readiness check's attempts are always made (`always_attempt`): they have their own
bound (HEALTH_CHECK_TIMEOUT), and they notice a server that answers again as soon as it does,
whatever attempt of a request is waiting. Attempts of a database that answers cost a dictionary
lookup and a clock read more.

A server whose processes stall while its host still acknowledges every packet answers nothing, and
nothing of TCP's ends a wait for it: `Watchdog` ends each wait (a statement, a COMMIT, a ROLLBACK)
that outlasts the statement timeout and DATABASE_CONNECT_TIMEOUT more.

docs/architecture.md, "Timeouts and retries"; docs/operations.md, "PostgreSQL is down".
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings

from core import outages
from core.db import shut_down_socket

logger = logging.getLogger(__name__)

if settings.METRICS_ENABLED:
    from django_prometheus.db.backends.postgresql.base import DatabaseWrapper as _Wrapper  # type: ignore[import-untyped]
else:
    from django.db.backends.postgresql.base import DatabaseWrapper as _Wrapper

# A failed attempt that took this long (seconds) waited for a server that did not answer: one that
# answers accepts or refuses within milliseconds. psycopg's connect timeout is at least 2 s.
SLOW_FAILURE = 1.0


class Unanswered:
    """Whether a database's server is answering connection attempts, shared by a process's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = False  # the last attempt failed after waiting: the server does not answer
        self.trying = False  # an attempt is under way while `waiting`
        self.answered = 0.0  # when an attempt last connected or was refused at once (monotonic)

    def before_attempt(self) -> bool:
        """True if this attempt is the one made while the server does not answer; False if the server
        answers. Raises `Unanswered.Refused` if another attempt is already under way."""
        if not self.waiting:  # the common case, without the lock
            return False
        with self.lock:
            if not self.waiting:
                return False
            if self.trying:
                raise self.Refused
            self.trying = True
            return True

    def after_attempt(self, *, trial: bool, started: float, waited_and_failed: bool) -> None:
        with self.lock:
            if trial:
                self.trying = False
            if not waited_and_failed:
                self.waiting, self.answered = False, time.monotonic()
            elif started > self.answered:  # else the server answered another attempt since this one began
                self.waiting = True

    class Refused(Exception):
        pass


class NotAttempted(psycopg.OperationalError):
    """A connection not attempted: another attempt is waiting on a server that answered none.

    Not transient for `core.db.retry_transient` (`connection_not_attempted`): retrying a write for
    DATABASE_RETRY_WINDOW while the server stays silent would hold its thread as long for nothing."""

    connection_not_attempted = True


_servers: dict[str, Unanswered] = {}  # by database alias
_servers_lock = threading.Lock()
_thread = threading.local()


def server_of(alias: str) -> Unanswered:
    server = _servers.get(alias)
    if server is None:
        with _servers_lock:
            server = _servers.setdefault(alias, Unanswered())
    return server


def always_attempt() -> None:
    """Make every connection attempt of the calling thread, whether the server answers or not (the
    readiness check's thread: core.health)."""
    _thread.always = True


def forget() -> None:
    """Every server answers again, as far as this process knows (a forked child; each test)."""
    global _servers_lock
    _servers.clear()
    _servers_lock = threading.Lock()  # a child's copy may be held by a thread the fork left behind


os.register_at_fork(after_in_child=forget)  # a child has none of its parent's attempts under way


# -- a server that stopped answering while connected ---------------------------------------------------


class Watchdog:
    """Ends a wait for the server's answer that lasts longer than any answer can take.

    A server whose processes stall (stopped, or waiting on a disk that hangs) while its host's kernel
    still answers for it acknowledges every packet: neither tcp_user_timeout nor the keepalives end
    a wait for its answer, and its statement_timeout needs it running. So each wait of a statement
    (every cursor's `execute`, Django's health check of a kept connection included), a COMMIT and a
    ROLLBACK is watched: one still waiting after the statement timeout and DATABASE_CONNECT_TIMEOUT
    more has its connection's socket shut down (on a duplicate of the descriptor, as the readiness
    check abandons its own: core/health.py), so it fails at once as "unavailable" and its thread is
    free. With DATABASE_STATEMENT_TIMEOUT_MS=0 (no limit) nothing is watched; code that raises
    statement_timeout for its own statements must lift the setting with it (tests/tasks/
    test_indexes.py's fixture does). The bound is per call: an `execute` of several statements, or
    an `executemany`, may legitimately take longer (taskhub sends neither). Server-side cursors are
    off (DISABLE_SERVER_SIDE_CURSORS), so `.iterator()` runs on a watched cursor too.

    One thread a process, started by the first wait, asleep until the earliest deadline; a wait
    costs two lock round trips, a settings read and a clock read. The socket is shut down under the
    lock that the waiting thread takes (in `done`) before Django may close its connection; libpq
    closes a socket itself when it finds the connection broken, so the descriptor is checked to be
    the connection's own socket still (its inode, kept when it connected) before the shutdown.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        self.waits: dict[int, tuple[float, Any]] = {}  # key -> (deadline, psycopg connection)
        self.keys = itertools.count()
        self.thread: threading.Thread | None = None
        self.wakes_at: float | None = None  # the deadline the thread sleeps until (None: no wait to watch)
        self.ended = 0  # waits ended, since the process started
        self.logged: float | None = None  # when it last said so

    def watch(self, raw: Any) -> int | None:
        """Watch a wait on `raw` (a psycopg connection) starting now; `done` with the key when it ends."""
        milliseconds = settings.DATABASE_STATEMENT_TIMEOUT_MS
        if not milliseconds:
            return None
        deadline = time.monotonic() + milliseconds / 1000 + settings.DATABASE_CONNECT_TIMEOUT
        key = next(self.keys)
        with self.condition:
            self.waits[key] = (deadline, raw)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="database-watchdog", daemon=True)
                self.thread.start()
            elif self.wakes_at is None or deadline < self.wakes_at:
                self.condition.notify()  # asleep with nothing to watch, or until later than this deadline
        return key

    def done(self, key: int | None) -> None:
        if key is not None:
            with self.condition:
                self.waits.pop(key, None)  # gone if the watchdog ended it

    def _run(self) -> None:
        while True:
            try:
                self._end_waits_past_their_deadline()
            except Exception:  # never the end of the watching
                logger.exception("the database watchdog failed; it goes on")
                time.sleep(1)

    def _end_waits_past_their_deadline(self) -> None:
        with self.condition:
            ended = 0
            while not ended:
                now = time.monotonic()
                for key, (deadline, raw) in list(self.waits.items()):
                    if deadline <= now:
                        del self.waits[key]
                        _shut_down(raw)
                        ended += 1
                if not ended:
                    self.wakes_at = min((deadline for deadline, _ in self.waits.values()), default=None)
                    self.condition.wait(None if self.wakes_at is None else self.wakes_at - now)
            self.wakes_at = None
        # Its own line, once a minute at most: the requests' own ("server closed the connection") blame
        # the server, and the readiness check has usually started the outage's line already.
        self.ended += ended
        if self.logged is None or now - self.logged >= outages.REMIND_EVERY:
            self.logged = now
            logger.warning(
                "database: %d wait(s) for an answer outlasted the statement timeout and DATABASE_CONNECT_TIMEOUT; "
                "their connections were shut down (%d since the process started)",
                ended,
                self.ended,
            )


_INODE = "_taskhub_socket_inode"  # set on each psycopg connection when it connects


def _shut_down(raw: Any) -> None:
    # Only its own socket: libpq closes it when it finds the connection broken, and the number may
    # have gone to another since (raw.fileno() raises once libpq has dropped the connection).
    shut_down_socket(raw, inode=getattr(raw, _INODE, -1))


watchdog = Watchdog()


def _new_watchdog() -> None:
    global watchdog
    watchdog = Watchdog()  # a forked child has no thread of its parent's


os.register_at_fork(after_in_child=_new_watchdog)


def _watched(cursor_class: type) -> type:
    """`cursor_class` (the connection's cursor factory) with each `execute` and `executemany` watched."""

    class WatchedCursor(cursor_class):
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            key = watchdog.watch(self.connection)
            try:
                return super().execute(*args, **kwargs)
            finally:
                watchdog.done(key)

        def executemany(self, *args: Any, **kwargs: Any) -> Any:
            key = watchdog.watch(self.connection)
            try:
                return super().executemany(*args, **kwargs)
            finally:
                watchdog.done(key)

    return WatchedCursor


class DatabaseWrapper(_Wrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if self.pool:  # psycopg's pool (OPTIONS "pool") connects on threads of its own, and bounds the wait itself
            return super().get_new_connection(conn_params)
        server = server_of(self.alias)
        try:
            trial = False if getattr(_thread, "always", False) else server.before_attempt()
        except Unanswered.Refused:
            # A DB-API error, which Django turns into its OperationalError: "unavailable".
            raise NotAttempted(
                "connection not attempted: the server did not answer the last attempt, and another is waiting for it"
            ) from None
        started = time.monotonic()
        try:
            connection = super().get_new_connection(conn_params)
        except BaseException:
            waited = time.monotonic() - started >= SLOW_FAILURE
            server.after_attempt(trial=trial, started=started, waited_and_failed=waited)
            raise
        if trial or server.waiting:
            server.after_attempt(trial=trial, started=started, waited_and_failed=False)
        with contextlib.suppress(Exception):  # the watchdog ends nothing it cannot tell is this socket
            setattr(connection, _INODE, os.fstat(connection.fileno()).st_ino)
        return connection

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        params["cursor_factory"] = _watched(params["cursor_factory"])
        return params

    def _commit(self) -> None:
        self._watched(super()._commit)

    def _rollback(self) -> None:
        self._watched(super()._rollback)

    def _watched(self, call: Callable[[], object]) -> None:
        key = watchdog.watch(self.connection) if self.connection is not None else None
        try:
            call()
        finally:
            watchdog.done(key)
