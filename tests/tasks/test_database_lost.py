"""A PostgreSQL server the network lost (a partition, a host gone) ends a request as "unavailable"
within seconds, instead of holding its thread until TCP gives up (config/settings/components/
database.py: libpq's tcp_user_timeout and keepalives, both DATABASE_CONNECT_TIMEOUT).

The server is one of the test's own (tests.faults.private_postgres), holding the test database's
schema; iptables drops every packet it sends, as a partition would (tests.faults.packets_lost).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection

from api_rest.auth import TokenObtainSerializer
from tests.factories import TaskFactory, UserFactory
from tests.faults import PrivatePostgres, default_database_on, packets_lost, private_postgres
from tests.live import postgres_url
from tests.observability.test_health import Process, server_environment, start_http

__all__ = ["start_http"]  # a fixture, used by name

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    # As the restart tests: root runs the private PostgreSQL (as postgres) and iptables; CI runs as root.
    pytest.mark.skipif(not PrivatePostgres.runnable(), reason="runs a private PostgreSQL and iptables: needs root"),
]

LOST = "taskhub-test-postgres-lost"  # tags the iptables rule
# How long one try may take to notice: DATABASE_CONNECT_TIMEOUT for a query unacknowledged, or that
# long idle and a probe unanswered while waiting for an answer (measured: 5.6 and 6.1 s with 5 s).
# A server's request may take two tries (Django's health check of its persistent connection, which
# the test client skips, then a new connection that is never accepted).
SECONDS = settings.DATABASE_CONNECT_TIMEOUT
BOUND = SECONDS + 3
# Without the options: TCP gives up after ~15 minutes (tcp_retries2), or never while waiting.
GIVE_UP = BOUND + 20


@pytest.fixture(scope="module")
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


class Worker(threading.Thread):
    """A thread of its own, as a server's request thread, with its own database connection: it runs
    `before` (which opens that connection), waits to be told to go on, then runs `after`,
    keeping its outcome (a result or an exception) and how long it took."""

    def __init__(self, before: Callable[[], Any], after: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.before, self.after = before, after
        self.ready, self.go = threading.Event(), threading.Event()
        self.outcome: Any = None
        self.took: float | None = None

    def run(self) -> None:
        try:
            self.before()
            self.ready.set()
            self.go.wait(30)
            started = time.monotonic()
            try:
                self.outcome = self.after()
            except Exception as exc:
                self.outcome = exc
            self.took = time.monotonic() - started
        finally:
            connection.close()

    def through_a_lost_network(self, port: int, *, delay: float = 0.0) -> None:
        """Run `after` while the server on `port` is lost; the loss starts `delay` seconds into it."""
        self.start()
        assert self.ready.wait(30), "the worker did not start"
        if delay:
            self.go.set()
            time.sleep(delay)
        with packets_lost(port, LOST):
            self.go.set()
            self.join(GIVE_UP)
            assert self.took is not None, f"still waiting on the lost database after {GIVE_UP} s"
        self.join(30)


def test_the_connections_bound_what_a_lost_network_holds() -> None:
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["tcp_user_timeout"] == SECONDS * 1000
    assert (options["keepalives"], options["keepalives_idle"]) == (1, SECONDS)


def test_a_request_to_a_database_the_network_lost_is_503_within_seconds(
    server: PrivatePostgres, client_for: Any
) -> None:
    with default_database_on(server):
        owner = UserFactory()
        TaskFactory(owner=owner)
        client = client_for(owner)
        worker = Worker(  # each request reads the database: a search no page in the cache answers
            before=lambda: client.get("/api/v1/tasks?search=before"),
            after=lambda: client.get("/api/v1/tasks?search=during"),
        )
        worker.through_a_lost_network(server.port)

        response = worker.outcome
        print(f"lost network: the request answered {getattr(response, 'status_code', response)} after {worker.took} s")
        assert not isinstance(response, BaseException), response
        assert response.status_code == 503, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert worker.took is not None and worker.took < BOUND, f"{worker.took:.1f} s"
        connection.close()  # the test's own, idle through the loss: its keepalive may have ended it
        assert client.get("/api/v1/tasks?search=after").status_code == 200  # the network is back, so is the service


def test_a_query_waiting_for_its_answer_when_the_network_is_lost_fails_within_seconds(
    server: PrivatePostgres,
) -> None:
    """The query reached the server and was acknowledged before the network went: nothing of the
    client's is left unacknowledged, so only the keepalive probes, unanswered, end the wait."""

    def query() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(3)")  # answered after the network is gone

    with default_database_on(server):
        worker = Worker(before=connection.ensure_connection, after=query)
        worker.through_a_lost_network(server.port, delay=0.5)

    print(f"lost network: the waiting query ended after {worker.took} s: {worker.outcome!r}")
    assert isinstance(worker.outcome, OperationalError), worker.outcome
    assert worker.took is not None and worker.took < BOUND, f"{worker.took:.1f} s"


def test_the_production_server_answers_503_when_the_network_loses_the_database(
    server: PrivatePostgres, start_http: Callable[..., Process]
) -> None:
    """granian with the production settings and one request thread, whose connection to the database
    is open: the next request's first statement is Django's health check of that connection, which
    the lost network fails, then the new connection it opens, which is never accepted: two tries."""
    with default_database_on(server):
        owner = UserFactory()
        TaskFactory(owner=owner)
        token = str(TokenObtainSerializer.get_token(owner).access_token)
        name = connection.settings_dict["NAME"]
    http = start_http(server_environment(postgres_url(name, port=server.port)), threads=1)
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/api/v1/tasks?search=before", headers).status == 200  # the thread's connection is open

    with packets_lost(server.port, LOST):
        started = time.monotonic()
        answer = http.get("/api/v1/tasks?search=during", headers)  # gives up after 20 s
        took = time.monotonic() - started
    print(f"lost network: granian answered {answer.status} after {took:.1f} s")

    assert answer.status == 503, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    assert took < 2 * BOUND, f"{took:.1f} s"
    assert http.get("/api/v1/tasks?search=after", headers).status == 200  # the network is back, so is the service
