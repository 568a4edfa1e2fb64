"""The database check of the probes (core.health.check_database): an answer within HEALTH_CHECK_TIMEOUT,
never a hang, whatever the database does, and never a 500 whoever asks.

PostgreSQL is reached through a TCP proxy of the test's own that can stall: it keeps every connection
open and forwards nothing (a partition, a frozen server), which no server-side timeout ends."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.auth import api_key_create
from tests.api_grpc.conftest import channel, grpc_server, open_channel, start_server  # noqa: F401 - fixtures
from tests.faults import database_unreachable, default_database_settings, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 0.5  # HEALTH_CHECK_TIMEOUT of these tests
CHECK_THREAD = "health-database"  # core.health._DatabaseCheck's threads


# -- who asks ---------------------------------------------------------------------------------------------


def test_health_with_an_uncached_api_key_while_the_database_is_down_is_503(manager: Any) -> None:
    """The key cannot be checked without the database: /health answers as it does without it (the
    status only), not a 500."""
    _, raw = api_key_create(user=manager, name="k")
    client = Client(raise_request_exception=False)
    with database_unreachable():
        plain = client.get("/health")
        keyed = client.get("/health", HTTP_X_API_KEY=raw)
    assert (plain.status_code, plain.json()) == (503, {"status": "unavailable"})
    assert (keyed.status_code, keyed.json()) == (503, {"status": "unavailable"})
    assert keyed["Retry-After"] == "5"
    assert "components" in client.get("/health", HTTP_X_API_KEY=raw).json()  # back: a manager sees details


# -- a database that stalls (PostgreSQL) --------------------------------------------------------------------


class StallingProxy:
    """Forwards to `upstream` until `stall()`, or until a client sends `stall_on`; from then on holds
    every byte, and accepts new connections without ever answering them (no reset, no close)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.stalled = threading.Event()
        self.stall_on: bytes | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self.stalled.set()

    def resume(self) -> None:
        self.stalled.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            if self.stalled.is_set():
                continue  # accepted, never answered
            server = socket.create_connection(self.upstream)
            self.sockets.append(server)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self.stall_on is not None and self.stall_on in data:
                    self.stalled.set()
                while self.stalled.is_set():
                    time.sleep(0.02)
                target.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def proxy() -> Iterator[StallingProxy]:
    upstream = (connection.settings_dict["HOST"] or "127.0.0.1", int(connection.settings_dict["PORT"] or 5432))
    proxy = StallingProxy(upstream)
    with (
        default_database_settings(HOST="127.0.0.1", PORT=str(proxy.port)),
        override_settings(HEALTH_CHECK_TIMEOUT=TIMEOUT),
    ):
        try:
            yield proxy
        finally:
            proxy.resume()  # whatever still waits on it finishes
            wait_until(lambda: not _check_threads(), timeout=10)
            proxy.close()


# One thread asks every time, so its own database connection (kept between requests, CONN_MAX_AGE) is
# the one that stalls, as a server thread's would; and a probe that hangs does not hang the test.
_prober = ThreadPoolExecutor(1, thread_name_prefix="prober")


def _get(path: str, limit: float = 15) -> tuple[float, int | None]:
    started = time.monotonic()
    future = _prober.submit(lambda: Client().get(path).status_code)
    try:
        status = future.result(limit)
    except FutureTimeout:
        status = None
    return time.monotonic() - started, status


def _check_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == CHECK_THREAD]


@pytest.mark.postgres
def test_readyz_is_503_within_the_timeout_when_the_open_connection_stalls(proxy: StallingProxy) -> None:
    assert _get("/readyz")[1] == 200
    proxy.stall()
    took, status = _get("/readyz")
    assert status == 503 and took < TIMEOUT + 1, (took, status)
    proxy.resume()
    assert wait_until(lambda: _get("/readyz")[1] == 200, timeout=10)


@pytest.mark.postgres
def test_readyz_is_503_within_the_timeout_when_a_new_connection_gets_no_answer(proxy: StallingProxy) -> None:
    """Not DATABASE_CONNECT_TIMEOUT (5 s) later: the check waits HEALTH_CHECK_TIMEOUT, whatever it waits on."""
    proxy.stall()
    took, status = _get("/readyz")
    assert status == 503 and took < TIMEOUT + 1, (took, status)


@pytest.mark.postgres
def test_stuck_checks_never_pile_up_and_then_answer_at_once(proxy: StallingProxy) -> None:
    """Connects that never get an answer run until DATABASE_CONNECT_TIMEOUT: one set aside and one in
    progress at most; while both are stuck, a probe is 503 at once instead of starting another."""
    proxy.stall()
    answers = [_get("/readyz") for _ in range(6)]
    assert [status for _, status in answers] == [503] * 6
    assert all(took < TIMEOUT + 1 for took, _ in answers), answers
    assert sum(took < TIMEOUT / 2 for took, _ in answers) >= 4, answers  # the ones after two stuck checks
    assert len(_check_threads()) <= 2


@pytest.mark.postgres
def test_a_statement_stuck_past_the_timeout_is_ended_not_left_waiting(proxy: StallingProxy) -> None:
    """The connection opens, then its `SELECT 1` gets no answer: when the check's callers give up, its
    connection is discarded (its socket shut down), so the thread ends at once though the database
    still stalls, instead of waiting as long as TCP does."""
    proxy.stall_on = b"SELECT 1"
    took, status = _get("/readyz")
    assert status == 503 and took < TIMEOUT + 1, (took, status)
    assert proxy.stalled.is_set()  # the statement was sent, and is held
    assert wait_until(lambda: not _check_threads(), timeout=1), _check_threads()


@pytest.mark.postgres
def test_grpc_health_is_not_serving_within_the_timeout_when_the_database_stalls(
    grpc_server: Any,  # noqa: F811
    channel: Any,  # noqa: F811
    proxy: StallingProxy,
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    checker = ThreadPoolExecutor(1)  # the checker's thread, as DatabaseHealthChecker has one
    assert checker.submit(grpc_server.checker.check).result(10) is True
    proxy.stall()
    started = time.monotonic()
    assert checker.submit(grpc_server.checker.check).result(10) is False
    assert time.monotonic() - started < TIMEOUT + 1
    status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    proxy.resume()
    assert checker.submit(grpc_server.checker.check).result(10) is True
