"""Fixtures of the contract suite: every test that takes `connect` runs once per protocol.

`connect.as_user(user)`, `connect.anonymous()`, `connect.with_api_key(user, read_only=...)` and
`connect.with_token(raw)` build a driver of the test's protocol (tests/contract/drivers.py); the
test id names the protocol, e.g. `test_crud[graphql]`.

REST and GraphQL run in the test's thread, inside the test's transaction, rolled back at its end.
gRPC runs a real server in this process whose pool threads have their own database connections: a
test that reaches it needs committed data. So `pytest_collection_modifyitems` marks exactly the tests
that use a protocol with a `SERVER_FIXTURE` `django_db(transaction=True)` (pytest-django's
`transactional_db`: the data is committed and the tables are emptied afterwards), and `_servers` gives
them that server (one per session). A test uses the protocols of its `protocol`, `first` and `then`
parameters; a test with none of them (tests/contract/test_equivalence.py) may build drivers of every
protocol itself, so it counts as using them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from django.db import connection

from api_grpc.server import Running, build_server
from tests.contract.drivers import DRIVERS, PROTOCOLS, Connect, Driver, GrpcDriver

HERE = Path(__file__).parent
PROTOCOL_PARAMETERS = ("protocol", "first", "then")
SERVER_FIXTURES = pytest.StashKey[list[str]]()


def protocols_of(item: pytest.Item) -> list[str]:
    """The protocols a contract test talks through."""
    params = getattr(item, "callspec", None)
    named = [params.params[name] for name in PROTOCOL_PARAMETERS if params and name in params.params]
    return named or PROTOCOLS


@pytest.hookimpl(tryfirst=True)  # before pytest-django sorts the tests by the kind of database they use
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue
        fixtures = sorted({name for p in protocols_of(item) if (name := DRIVERS[p].SERVER_FIXTURE) is not None})
        if fixtures:
            marker = item.get_closest_marker("django_db")
            options = {**(marker.kwargs if marker else {}), "transaction": True}
            item.add_marker(pytest.mark.django_db(**options), append=False)
        item.stash[SERVER_FIXTURES] = fixtures


@pytest.fixture(autouse=True)
def _servers(request: pytest.FixtureRequest) -> None:
    """The servers of the test's protocols (none for REST and GraphQL)."""
    for name in request.node.stash.get(SERVER_FIXTURES, []):
        request.getfixturevalue(name)


@pytest.fixture(scope="session")
def grpc_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[Running]:
    """One gRPC server for the session, on a free port, and the channel every GrpcDriver uses.

    It reads django.conf.settings on each call, so `settings` overrides apply to it. Health (with its
    background database check) and reflection are off: the suite calls only TaskService. Once it is
    stopped, the database sessions its threads kept (PostgreSQL, CONN_MAX_AGE) are ended, or the
    test database could not be dropped.
    """
    running = build_server(host="127.0.0.1", port=0, health_enabled=False, reflection_enabled=False)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    GrpcDriver.channel = channel
    try:
        yield running
    finally:
        GrpcDriver.channel = None
        channel.close()
        running.shutdown(0).wait(10)
        with django_db_blocker.unblock():
            _end_other_sessions()


def _end_other_sessions() -> None:
    """PostgreSQL: end every other session on the test database (the server threads' ones), and wait
    until they are gone."""
    if connection.vendor != "postgresql":
        return
    others = (
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            cursor.execute(f"SELECT count(*) {others}")
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.02)


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connect(protocol: str, db: None) -> Connect:
    return Connect(protocol)


@pytest.fixture
def alice(user: Any, connect: Connect) -> Driver:
    """An editor's driver (the `user` fixture)."""
    return connect.as_user(user)


@pytest.fixture
def bob(other_user: Any, connect: Connect) -> Driver:
    """Another editor's driver (the `other_user` fixture)."""
    return connect.as_user(other_user)


@pytest.fixture
def rate_limits(settings: Any) -> Callable[..., None]:
    """Switch rate limits on, generous except for the scopes given, e.g. `rate_limits(user=["3/h"])`.

    Hour windows keep a test away from a window boundary. The gRPC server's threads read
    django.conf.settings too, so the limits apply to them.
    """

    def set_limits(**scopes: list[str]) -> None:
        settings.RATE_LIMITS_ENABLED = True
        settings.RATE_LIMITS = {
            "anon": ["1000/h"],
            "user": ["1000/h"],
            "token": ["1000/h"],
            "login_user": ["1000/h"],
            **scopes,
        }

    return set_limits
