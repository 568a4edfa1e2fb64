"""PostgreSQL only: the GIN/trigram indexes serve the tag and search filters, statement timeouts and
transient-error retries (docs/architecture.md, "Timeouts and retries")."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from django.db import DataError, OperationalError, connection, transaction

from core.db import retry_transient, time_budget
from core.errors import ServiceUnavailable, TimeBudgetExceeded, translate
from tasks.filters import TaskFilter
from tasks.models import Task

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


@pytest.fixture
def many_tasks(user: Any) -> None:
    rng = random.Random(7)
    Task.objects.bulk_create(
        Task(
            owner=user,
            title=" ".join(rng.sample(WORDS, 3)) + f" {n}",
            description=" ".join(rng.sample(WORDS, 4)),
            tags=rng.sample(WORDS, 2),
        )
        for n in range(400)
    )
    Task.objects.create(owner=user, title="Buy oat milk", tags=["shopping"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")


def plan(filters: dict[str, str]) -> str:
    queryset = TaskFilter(filters, queryset=Task.objects.all()).qs.order_by()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


def test_tag_filter_uses_the_gin_index(many_tasks: None) -> None:
    text = plan({"tag": "Shopping"})
    assert "task_owner_tags_gin" in text, text
    assert TaskFilter({"tag": "Shopping"}, queryset=Task.objects.all()).qs.count() == 1


def test_search_uses_the_trigram_indexes(many_tasks: None) -> None:
    text = plan({"search": "oat milk"})
    assert "task_owner_title_trgm" in text, text
    assert "task_owner_description_trgm" in text, text
    assert TaskFilter({"search": "OAT MILK"}, queryset=Task.objects.all()).qs.count() == 1


# -- statement timeout ---------------------------------------------------------------------------------------


def test_statement_timeout_is_a_time_budget_error() -> None:
    with pytest.raises(OperationalError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 50")
        cursor.execute("SELECT pg_sleep(1)")
    assert isinstance(translate(info.value), TimeBudgetExceeded)


def test_connection_settings_carry_a_statement_timeout() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] not in ("0", "0ms")


def test_other_operational_errors_are_unavailable() -> None:
    with pytest.raises(OperationalError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'gone' USING ERRCODE = '08006'; END $$")
    assert isinstance(translate(info.value), ServiceUnavailable)


# -- retry of transient errors ---------------------------------------------------------------------------------


def raise_sql(errcode: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{errcode}'; END $$"


def failing(errcode: str, failures: int) -> tuple[Any, list[int]]:
    """A transactional unit of work that fails with `errcode` its first `failures` times, then writes a row."""
    calls: list[int] = []

    @retry_transient
    def work(owner_id: int) -> str:
        calls.append(1)
        with transaction.atomic(), connection.cursor() as cursor:
            Task.objects.create(owner_id=owner_id, title=f"attempt {len(calls)}")
            if len(calls) <= failures:
                cursor.execute(raise_sql(errcode))
        return "done"

    return work, calls


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("errcode", ["40001", "40P01"])
def test_transient_error_is_retried(user: Any, errcode: str) -> None:
    work, calls = failing(errcode, failures=1)
    assert work(user.pk) == "done"
    assert len(calls) == 2
    assert list(Task.objects.values_list("title", flat=True)) == ["attempt 2"]  # the first try rolled back


@pytest.mark.django_db(transaction=True)
def test_retries_are_bounded_by_the_retry_window(user: Any, settings: Any) -> None:
    settings.DATABASE_RETRY_WINDOW = 0.3
    work, calls = failing("40001", failures=1000)
    started = time.monotonic()
    with pytest.raises(OperationalError) as info:
        work(user.pk)
    assert info.value.__cause__.sqlstate == "40001"  # type: ignore[union-attr]
    assert time.monotonic() - started < 0.3 + 0.5  # the window, and the last try
    # Backoff 12.5-25 ms, 25-50, 50-100, 100-200...: a handful of tries, not a busy loop.
    assert 3 <= len(calls) <= 8
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_no_retry_waits_past_the_time_budget(user: Any, settings: Any) -> None:
    settings.DATABASE_RETRY_WINDOW = 5
    work, _ = failing("40001", failures=1000)
    started = time.monotonic()
    with pytest.raises(TimeBudgetExceeded), time_budget(0.2):
        work(user.pk)
    assert time.monotonic() - started < 0.5


@pytest.mark.django_db(transaction=True)
def test_non_transient_error_is_raised_at_once(user: Any) -> None:
    work, calls = failing("22012", failures=1)
    with pytest.raises(DataError):
        work(user.pk)
    assert len(calls) == 1
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_non_transient_operational_error_is_raised_at_once(user: Any) -> None:
    work, calls = failing("53400", failures=1)  # configuration_limit_exceeded
    with pytest.raises(OperationalError):
        work(user.pk)
    assert len(calls) == 1


@pytest.mark.django_db(transaction=True)
def test_nothing_is_retried_inside_an_outer_transaction(user: Any) -> None:
    work, calls = failing("40001", failures=1)
    with pytest.raises(OperationalError), transaction.atomic():
        work(user.pk)
    assert len(calls) == 1
    assert not Task.objects.exists()


def terminate_backend(pid: int) -> None:
    """Have the server drop a connection, as a restart or a failover does, and wait until it is gone."""
    killer = connection.get_new_connection(connection.get_connection_params())
    try:
        killer.autocommit = True
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 5
        while killer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the backend did not go away"
            time.sleep(0.01)
    finally:
        killer.close()


@pytest.mark.django_db(transaction=True)
def test_connection_dropped_by_the_server_is_retried_on_a_fresh_one(user: Any) -> None:
    """a dropped connection is transient. A server-side drop (restart, failover,
    pg_terminate_backend) reaches the client as SQLSTATE 57P01 admin_shutdown."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        first_pid = cursor.fetchone()[0]
    terminate_backend(first_pid)
    calls: list[int] = []

    @retry_transient
    def work() -> int:
        calls.append(1)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    pid = work()
    assert pid != first_pid
    assert len(calls) == 2
