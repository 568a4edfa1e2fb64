"""Fixtures of the gRPC adapter tests: a real server in the test process and real channels to it.

`start_server(**options)` runs `api_grpc.server.build_server(host="127.0.0.1", port=0, ...)` in this
process (`host="[::1]"` for IPv6). Its pool threads open their own database connections, so every
test that talks to it runs with `transaction=True` (the fixture asks for `transactional_db`): data
must be committed to be seen.
After the test the server is stopped and, on PostgreSQL, the connections its threads kept are ended
so that the test database can be flushed and dropped.

The background database check of the health service runs once an hour here, so it cannot race a
test that breaks the database; tests call `Running.checker.check()` themselves (one test runs the
thread with a short interval).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.server import Running, build_server
from tests.api_grpc.helpers import Metadata, bearer, terminate_other_connections, wait_until


@pytest.fixture
def start_server(transactional_db: None, settings: Any) -> Iterator[Callable[..., Running]]:
    settings.GRPC_HEALTH_CHECK_INTERVAL = 3600
    started: list[Running] = []

    def start(host: str = "127.0.0.1", **options: Any) -> Running:
        running = build_server(host=host, port=0, **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.shutdown(0).wait(5)
        # Streams end at their next look at the call (streams.POLL): let them, logs included, before
        # the next test (or the end of the capture of this one).
        assert wait_until(lambda running=running: running.streams.count == 0, timeout=5)
    terminate_other_connections()


@pytest.fixture
def grpc_server(start_server: Callable[..., Running]) -> Running:
    return start_server()


@pytest.fixture
def open_channel(grpc_server: Running) -> Iterator[Callable[..., grpc.Channel]]:
    """`open_channel(**kwargs)` → another channel to the server (kwargs go to grpc.insecure_channel)."""
    channels: list[grpc.Channel] = []

    def open_(port: int | None = None, **kwargs: Any) -> grpc.Channel:
        channel = grpc.insecure_channel(f"127.0.0.1:{port or grpc_server.port}", **kwargs)
        channels.append(channel)
        return channel

    yield open_
    for channel in channels:
        channel.close()


@pytest.fixture
def channel(open_channel: Callable[..., grpc.Channel]) -> grpc.Channel:
    return open_channel()


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.TaskServiceStub:
    return pb_grpc.TaskServiceStub(channel)


@pytest.fixture
def as_user(user: Any) -> Metadata:
    """Metadata of the `user` fixture (an editor) with a real JWT."""
    return bearer(user)


@pytest.fixture
def as_other(other_user: Any) -> Metadata:
    return bearer(other_user)


@pytest.fixture
def rate_limits(settings: Any) -> Callable[..., None]:
    """Switch rate limits on, generous except for the scopes given, e.g. `rate_limits(user=["2/h"])`.

    The server threads read django.conf.settings, which the `settings` fixture changes for them too.
    Hour windows keep a test away from a window boundary.
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
