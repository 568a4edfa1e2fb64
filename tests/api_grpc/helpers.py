"""Helpers of the gRPC adapter tests: credentials as metadata, calls that return trailers, and real
faults (a database that cannot be reached, a row held locked by another connection).

Everything goes through real channels to a real `api_grpc.server.build_server` server; nothing of ours
is mocked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import grpc
import pytest
from django.db import connection, connections
from google.protobuf.timestamp_pb2 import Timestamp

from core.auth import api_key_create
from tests.conftest import access_token

Metadata = tuple[tuple[str, str], ...]

TIMEOUT = 10.0  # seconds; every call has a deadline so that a bug cannot hang the suite
SERVICE = "tasks.v1.TaskService"
UNKNOWN_ID = "6f1c2a5e-0000-4000-8000-000000000404"


# -- credentials ---------------------------------------------------------------------------------------------


def bearer(user: Any) -> Metadata:
    """`authorization: Bearer <a real access token of user>`."""
    return (("authorization", f"Bearer {access_token(user)}"),)


def api_key(user: Any, **options: Any) -> Metadata:
    """`x-api-key: <a real API key of user>` (options: read_only, expires_at)."""
    _, raw = api_key_create(user=user, name="grpc test key", **options)
    return (("x-api-key", raw),)


# -- calls ---------------------------------------------------------------------------------------------------


def trailers(call: grpc.Call) -> dict[str, str]:
    return dict(call.trailing_metadata() or ())


def ok(method: Any, request: Any, metadata: Metadata = (), *, timeout: float = TIMEOUT, **kwargs: Any) -> Any:
    """The response of a call that must succeed."""
    return ok_with_trailers(method, request, metadata, timeout=timeout, **kwargs)[0]


def ok_with_trailers(
    method: Any, request: Any, metadata: Metadata = (), *, timeout: float = TIMEOUT, **kwargs: Any
) -> tuple[Any, dict[str, str]]:
    try:
        response, call = method.with_call(request, metadata=metadata, timeout=timeout, **kwargs)
    except grpc.RpcError as exc:  # pragma: no cover - the message says what went wrong
        pytest.fail(f"expected OK, got {exc.code()}: {exc.details()} {trailers(exc)}")
    return response, trailers(call)


def fails(
    method: Any,
    request: Any,
    metadata: Metadata = (),
    *,
    code: grpc.StatusCode,
    error_code: str | None = None,
    timeout: float = TIMEOUT,
    **kwargs: Any,
) -> tuple[grpc.RpcError, dict[str, str]]:
    """Make a call that must end with `code` (and, if given, trailer `taskhub-error-code: error_code`).

    Returns the error (a grpc.Call too) and its trailing metadata. No call may ever end UNKNOWN.
    """
    with pytest.raises(grpc.RpcError) as info:
        method.with_call(request, metadata=metadata, timeout=timeout, **kwargs)
    error = info.value
    found = trailers(error)
    assert error.code() != grpc.StatusCode.UNKNOWN, (error.details(), found)
    assert error.code() == code, (error.code(), error.details(), found)
    if error_code is not None:
        assert found.get("taskhub-error-code") == error_code, found
    return error, found


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


# -- database faults ------------------------------------------------------------------------------------------


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
