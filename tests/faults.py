"""Real database faults for tests of every protocol: an unreachable database, held locks, ended sessions.

No mocks: the connection settings are broken for real, locks are taken by another connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, connections


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def terminate_other_connections() -> int:
    """PostgreSQL: end every other client session on the test database (the server threads' ones).

    Server threads keep their connections (CONN_MAX_AGE) after the server stops; ending them lets
    the test database be flushed and dropped, and lets a test cut a connection for real.
    """
    if connection.vendor != "postgresql":
        return 0
    ended = 0

    def none_left() -> bool:
        nonlocal ended
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            (count,) = cursor.fetchone()
        ended += count
        # A server thread still at work may reconnect (its service retries): then end that session too.
        return wait_until(lambda: _other_sessions() == 0, timeout=0.5, interval=0.005)

    wait_until(none_left, timeout=10, interval=0)
    return ended


def _other_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        (count,) = cursor.fetchone()
    return int(count)


@contextmanager
def database_unreachable() -> Iterator[None]:
    """Make every connection of the default database fail for real, in every thread, then put it back.

    The settings dict is shared by the connections of all threads, so new connections of the server's
    threads fail too; their open ones are ended (PostgreSQL; SQLite closes them after each call).
    """
    settings_dict = connections["default"].settings_dict
    saved = dict(settings_dict)
    terminate_other_connections()
    connection.close()
    if connection.vendor == "sqlite":
        settings_dict["NAME"] = "/nonexistent-directory/taskhub/db.sqlite3"
    else:
        settings_dict.update(HOST="127.0.0.1", PORT="1")  # nothing listens on port 1
    try:
        yield
    finally:
        connection.close()
        settings_dict.clear()
        settings_dict.update(saved)


@contextmanager
def _held(take_lock: Callable[[], None]) -> Iterator[None]:
    """Run `take_lock` in a transaction of another thread and connection; hold it until the block ends."""
    locked, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        from django.db import connection as thread_connection
        from django.db import transaction

        try:
            with transaction.atomic():
                take_lock()
                locked.set()
                release.wait(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            locked.set()
            thread_connection.close()

    holder = threading.Thread(target=hold, name="lock-holder")
    holder.start()
    try:
        assert locked.wait(10) and not errors, errors
        yield
    finally:
        release.set()
        holder.join(10)
    assert not errors, errors


def row_locked(task_id: Any) -> Any:
    """Hold a write lock on a task from another connection until the block ends.

    PostgreSQL: SELECT ... FOR UPDATE of the row. SQLite: the IMMEDIATE transaction of
    `transaction.atomic` holds the database's write lock, so every write of the server waits.
    """
    from tasks.models import Task

    return _held(lambda: Task.objects.select_for_update().filter(pk=task_id).exists() or None)


def task_writes_blocked() -> Any:
    """Make every write to the task table wait (reads go on) until the block ends.

    PostgreSQL: LOCK TABLE ... IN SHARE MODE, which each INSERT, UPDATE and DELETE statement waits
    for. SQLite: the write lock held by the IMMEDIATE transaction.
    """

    def take_lock() -> None:
        from django.db import connection as thread_connection

        if thread_connection.vendor == "postgresql":
            with thread_connection.cursor() as cursor:
                cursor.execute("LOCK TABLE tasks_task IN SHARE MODE")

    return _held(take_lock)


def a_call_waits_on_a_lock(timeout: float = 5.0) -> bool:
    """True once another session waits on a lock (PostgreSQL); SQLite cannot tell, so after a pause."""
    if connection.vendor != "postgresql":
        time.sleep(0.4)
        return True

    def waiting() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )
            (count,) = cursor.fetchone()
        return bool(count)

    return wait_until(waiting, timeout=timeout)


@contextmanager
def statement_timeout(*, milliseconds: int) -> Iterator[None]:
    """PostgreSQL: cut this connection's statements short after `milliseconds` until the block ends."""
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = %s", [milliseconds])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
