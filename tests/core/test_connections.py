"""A thread's database connections around each request (core.db): the receivers that close a
broken or expired connection and forget logged queries, connected for the serving WSGI handler
only, and what the production server does with them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import django.db
import pytest
from django.core.signals import request_finished, request_started
from django.db import connection
from django.dispatch import Signal

from core import db
from tests.faults import wait_until
from tests.live import test_database_url
from tests.observability.test_health import Process, server_environment, start_http  # noqa: F401 (fixture)


class Serving:
    """Stands for a serving process's handler class: the sender its requests are sent under."""


class Other:
    """Any other sender: a test client's handler, say."""


@pytest.fixture
def serving() -> Iterator[type]:
    """`serve_requests_of(Serving)`, undone afterwards: Django's receivers back, core.db's gone."""
    db.serve_requests_of(Serving)
    yield Serving
    request_started.disconnect(db.reset_queries, sender=Serving)
    request_started.disconnect(db.close_old_connections, sender=Serving)
    request_finished.disconnect(db.close_old_connections, sender=Serving)
    request_started.connect(django.db.reset_queries)
    request_started.connect(django.db.close_old_connections)
    request_finished.connect(django.db.close_old_connections)


def logged_query() -> None:
    connection.queries_log.append({"sql": "SELECT 1", "time": "0.000"})


def test_a_serving_request_forgets_the_logged_queries(serving: type) -> None:
    logged_query()
    request_started.send(sender=serving, environ={})
    assert len(connection.queries_log) == 0


def test_another_senders_request_runs_neither_receiver(serving: type) -> None:
    logged_query()
    request_started.send(sender=Other, environ={})  # Django's reset_queries would have emptied it
    assert len(connection.queries_log) == 1
    connection.queries_log.clear()


@pytest.mark.django_db(transaction=True)  # closing a connection inside a test's transaction would break it
@pytest.mark.parametrize("signal", [request_started, request_finished], ids=["started", "finished"])
def test_an_expired_connection_is_closed_around_a_serving_request(serving: type, signal: Signal) -> None:
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1  # past its CONN_MAX_AGE
    signal.send(sender=Other)
    assert connection.connection is not None  # not a serving request: left alone
    signal.send(sender=serving)
    assert connection.connection is None
    connection.ensure_connection()  # the next query opens a new one
    assert connection.is_usable()


@pytest.mark.django_db(transaction=True)
def test_a_connection_in_its_age_is_kept(serving: type) -> None:
    connection.ensure_connection()
    connection.close_at = time.monotonic() + 60
    opened = connection.connection
    request_finished.send(sender=serving)
    assert connection.connection is opened


@pytest.mark.django_db(transaction=True)
def test_a_connection_left_out_of_autocommit_is_closed(serving: type) -> None:
    connection.ensure_connection()
    connection.close_at = None
    connection.set_autocommit(False)  # a request that forgot to set it back
    request_finished.send(sender=serving)
    assert connection.connection is None


# -- the production server -------------------------------------------------------------------------------


def server_sessions(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name])
        (count,) = cursor.fetchone()
    return int(count)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_granian_closes_a_connection_past_its_age_after_the_request(
    start_http: Callable[..., Process],  # noqa: F811 (the imported fixture)
) -> None:
    """granian serving config.wsgi: /readyz queries the database through its thread's connection. With
    DATABASE_CONN_MAX_AGE=0 that connection is closed once the request ends."""
    name = f"taskhub-connections-{uuid.uuid4().hex[:8]}"
    url = f"{test_database_url()}?application_name={name}"
    server = start_http(server_environment(url, DATABASE_CONN_MAX_AGE="0"))
    for _ in range(3):
        assert server.get("/readyz").status == 200
        assert wait_until(lambda: server_sessions(name) == 0, timeout=5), server_sessions(name)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_granian_keeps_a_connection_in_its_age(start_http: Callable[..., Process]) -> None:  # noqa: F811 (the imported fixture)
    """The same with DATABASE_CONN_MAX_AGE=60: the connection stays for the thread's next request (and
    the count above does see the server's sessions)."""
    name = f"taskhub-connections-{uuid.uuid4().hex[:8]}"
    url = f"{test_database_url()}?application_name={name}"
    server = start_http(server_environment(url, DATABASE_CONN_MAX_AGE="60"))
    assert server.get("/readyz").status == 200
    time.sleep(0.5)  # past the end of the request, when an expired connection would have been closed
    assert server_sessions(name) >= 1
