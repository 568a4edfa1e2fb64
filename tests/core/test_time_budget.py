"""core.db.time_budget lowers the statement timeout (PostgreSQL) or busy timeout (SQLite) only when a
statement runs in the block, before that statement, and sets the default back afterwards; a block
that runs no statement (a gRPC call answered from the cache) sends nothing to the database."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import django.db
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.db import _default_timeout_ms, time_budget
from core.errors import TimeBudgetExceeded

pytestmark = pytest.mark.django_db


def _timeout_ms() -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'")
        else:
            cursor.execute("PRAGMA busy_timeout")
        return int(cursor.fetchone()[0])


def test_a_block_without_statements_sends_nothing() -> None:
    connection.ensure_connection()
    with CaptureQueriesContext(connection) as queries, time_budget(0.5, wanted=lambda: True):
        pass

    assert queries.captured_queries == []


def test_a_short_budget_lowers_the_timeout_for_the_blocks_statements_then_restores_it() -> None:
    default = _default_timeout_ms(connection)
    assert _timeout_ms() == default

    with CaptureQueriesContext(connection) as queries, time_budget(0.5):
        inside = _timeout_ms()

    assert 0 < inside <= 500
    assert _timeout_ms() == default
    lowered = [q["sql"] for q in queries.captured_queries if "timeout =" in q["sql"]]
    assert len(lowered) == 2  # lowered once before the first statement, restored once at the end


def test_a_budget_longer_than_the_default_leaves_the_timeout_alone() -> None:
    default = _default_timeout_ms(connection)
    with CaptureQueriesContext(connection) as queries, time_budget(default / 1000 + 60):
        inside = _timeout_ms()

    assert inside == default
    assert not [q for q in queries.captured_queries if "timeout =" in q["sql"]]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statement_timeout 0: no limit")
def test_a_budget_lowers_a_timeout_of_no_limit_and_restores_it(settings: Any) -> None:
    settings.DATABASE_STATEMENT_TIMEOUT_MS = 0  # DATABASE_STATEMENT_TIMEOUT_MS=0, as a connection made with it has
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
    try:
        with time_budget(0.5):
            inside = _timeout_ms()
        after = _timeout_ms()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")

    assert 0 < inside <= 500
    assert after == 0


def test_a_statement_after_the_deadline_is_refused_and_the_timeout_restored() -> None:
    default = _default_timeout_ms(connection)
    with pytest.raises(TimeBudgetExceeded), time_budget(0.05):
        _timeout_ms()
        time.sleep(0.06)
        _timeout_ms()

    assert _timeout_ms() == default


def test_the_budget_ends_with_its_block() -> None:
    with time_budget(0.01):
        pass
    time.sleep(0.02)

    assert _timeout_ms() == _default_timeout_ms(connection)  # past that deadline, and not refused


def test_a_statement_is_checked_against_every_enclosing_budget() -> None:
    wanted = True
    with time_budget(None, wanted=lambda: wanted):
        with time_budget(60):
            _timeout_ms()
            wanted = False
            with pytest.raises(TimeBudgetExceeded, match="call ended"):
                _timeout_ms()
        with pytest.raises(TimeBudgetExceeded, match="call ended"):
            _timeout_ms()
    _timeout_ms()


def test_each_thread_s_budget_wraps_that_thread_s_connection() -> None:
    """Django keeps a connection per thread, and a budget checks the statements of its own thread's:
    a gRPC call's budget never reaches another call's statements."""
    main_thread_wrappers = list(connection.execute_wrappers)
    seen: dict[str, object] = {}
    entered, release = threading.Event(), threading.Event()

    def call() -> None:
        try:
            for _ in range(2):
                with time_budget(None, wanted=lambda: True):
                    seen["own"] = len(django.db.connection.execute_wrappers)
                    seen["same as the main thread's"] = django.db.connection is connection_of_main
                    entered.set()
                    release.wait(5)
            seen["own after"] = len(django.db.connection.execute_wrappers)
        finally:
            django.db.connections.close_all()

    connection_of_main = django.db.connections["default"]
    thread = threading.Thread(target=call)
    thread.start()
    assert entered.wait(5)
    during = list(connection.execute_wrappers)
    release.set()
    thread.join(5)

    assert seen == {"own": 1, "same as the main thread's": False, "own after": 0}
    assert during == main_thread_wrappers == list(connection.execute_wrappers)


def test_a_budget_wraps_the_connection_its_block_uses_in_and_out_of_an_event_loop() -> None:
    """While a thread runs an event loop, asgiref's Local gives it other connections (one per
    context) than outside it: each budget wraps the connection its own block uses, so the connection is
    looked up on entry, never kept per thread (that cache made a slow health check a 200)."""
    before = len(connection.execute_wrappers)

    async def in_a_loop() -> int:
        with time_budget(None, wanted=lambda: True):
            return len(django.db.connection.execute_wrappers)

    assert asyncio.run(in_a_loop()) == 1
    with time_budget(None, wanted=lambda: True):
        assert len(connection.execute_wrappers) == before + 1
    assert len(connection.execute_wrappers) == before
