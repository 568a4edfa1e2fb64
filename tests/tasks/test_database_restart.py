"""Writes ride out a real PostgreSQL restart (`pg_ctl restart -m fast`) within DATABASE_RETRY_WINDOW.

The restarted server is one of the test's own (tests.faults.private_postgres), holding the test
database's schema: the shared server is never restarted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from django.db import OperationalError, connection, transaction

from tasks.models import Task
from tasks.services import task_create, task_update
from tests.factories import UserFactory, actor_of
from tests.faults import PrivatePostgres, default_database_on, private_postgres, wait_until

T = TypeVar("T")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    # A contributor may run the tests as a user who cannot become postgres; CI and the test machines run as root.
    pytest.mark.skipif(not PrivatePostgres.runnable(), reason="runs a private PostgreSQL as postgres: needs root"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def during_a_restart(server: PrivatePostgres, write: Callable[[], T]) -> tuple[T, float]:
    """Run `write` once the restarting server refuses connections; also how long it refused them."""
    restarting = threading.Thread(target=server.restart)
    restarting.start()
    try:
        assert wait_until(lambda: not server.accepts_connections(), timeout=10, interval=0.001)
        down_since = time.monotonic()
        result = write()
        wait_until(server.accepts_connections, timeout=10, interval=0.001)
        return result, time.monotonic() - down_since
    finally:
        restarting.join(30)


def test_a_write_during_a_restart_succeeds(server: PrivatePostgres, caplog: pytest.LogCaptureFixture) -> None:
    with default_database_on(server):
        actor = actor_of(UserFactory())
        task = task_create(actor=actor, data={"title": "before"})  # a persistent connection the restart ends
        with caplog.at_level(logging.INFO, logger="core.db"):
            updated, _ = during_a_restart(
                server, lambda: task_update(actor=actor, task_id=task.pk, changes={"title": "during"})
            )
        assert (updated.title, updated.version) == ("during", 2)
        assert Task.objects.get(pk=task.pk).title == "during"
        # It met the restart and was retried, not merely lucky.
        assert any("transient database error" in record.getMessage() for record in caplog.records)


def test_a_rest_create_during_a_restart_is_201_or_503_never_500(server: PrivatePostgres, client_for: Any) -> None:
    with default_database_on(server):
        client = client_for(UserFactory())
        assert client.post("/api/v1/tasks", {"title": "warm-up"}, format="json").status_code == 201
        response, _ = during_a_restart(server, lambda: client.post("/api/v1/tasks", {"title": "x"}, format="json"))
        # Reads (the JWT's user) are not retried: at worst 503 with Retry-After, never a server error.
        assert response.status_code in (201, 503), response.content
        if response.status_code == 503:
            assert int(response["Retry-After"]) > 0
        else:
            assert Task.objects.filter(title="x").count() == 1


def test_nothing_is_retried_inside_an_outer_transaction_during_a_restart(server: PrivatePostgres) -> None:
    with default_database_on(server):
        actor = actor_of(UserFactory())
        task = task_create(actor=actor, data={"title": "before"})

        def nested() -> None:
            try:
                with transaction.atomic():
                    Task.objects.filter(pk=task.pk).exists()  # the transaction holds a connection...
                    server_down.wait(10)  # ...which the restart ends
                    started = time.monotonic()
                    try:
                        task_update(actor=actor, task_id=task.pk, changes={"title": "nested"})
                    finally:
                        elapsed.append(time.monotonic() - started)
            except OperationalError:
                raised.set()
            finally:
                connection.close()

        server_down, raised = threading.Event(), threading.Event()
        elapsed: list[float] = []
        holder = threading.Thread(target=nested)
        holder.start()
        time.sleep(0.2)  # the holder's transaction has begun
        during_a_restart(server, server_down.set)
        holder.join(30)
        assert raised.is_set()
        # Raised at once (the outermost caller reruns a transaction), not after the retry window.
        assert elapsed and elapsed[0] < 1.0
        connection.close()  # the restart ended this thread's connection too
        assert Task.objects.get(pk=task.pk).title == "before"
