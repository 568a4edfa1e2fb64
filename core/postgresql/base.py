"""Django's PostgreSQL backend (django-prometheus' when METRICS_ENABLED), with one change: while the
server does not answer connection attempts, a process waits on one attempt at a time.

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
whatever attempt of a request is waiting. Attempts of a database that answers are not touched
(one attribute read each).

docs/architecture.md, "Timeouts and retries"; docs/operations.md, "PostgreSQL is down".
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psycopg
from django.conf import settings

if settings.METRICS_ENABLED:
    from django_prometheus.db.backends.postgresql.base import DatabaseWrapper as _Wrapper
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
        return connection
