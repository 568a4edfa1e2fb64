"""Health (docs/operations.md, "Health"; core/health.py): `/healthz`, `/readyz`, `/health` and gRPC
health, proved with real failures, never mocks.

Most tests start a real server process (granian, the production WSGI server, with the production
settings) whose environment points at a dependency that is really dead: a PostgreSQL port nothing
listens on, an SQLite file that cannot be opened, a Redis port nothing listens on, a fresh database
nobody migrated. Where a dependency must die and come back under a running server, the server talks
to the real PostgreSQL or Redis through a TCP forwarder of the test's (`Door`), which the test
closes (nothing listens any more, open connections are cut) and opens again: for the server that is
PostgreSQL or Redis stopping and starting, without stopping the shared ones other tests use.

The documented choice tested here: a dead cache leaves the service ready (`/readyz` 200, status
`degraded`, the cache named), because every request is still served from the database.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client, override_settings
from grpc_health.v1 import health_pb2, health_pb2_grpc

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_rest.auth import TokenObtainSerializer
from tests.factories import TaskFactory, UserFactory
from tests.faults import database_unreachable, default_database_settings, wait_until
from tests.live import free_port, postgres_url, test_database_url

BASE_DIR = Path(settings.BASE_DIR)
VERSION = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]["version"]
CONCERNS = {
    "graphql",
    "grpc",
    "cache",
    "metrics",
    "tracing",
    "tracing_exporters",
    "rate_limits",
    "cors",
    "compression",
    "metrics_multiprocess",
}
SERVICE = "tasks.v1.TaskService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
NO_STORE = "no-store"  # never_cache: a probe's answer must never come from a cache on the way
DEAD_SQLITE = "sqlite:////nonexistent-directory/taskhub-health/db.sqlite3"  # cannot be opened, or created
# /health's details (version, components, concerns) are for staff, managers and the metrics token; the
# servers inherit METRICS_TOKEN from this process (config.settings.test).
DETAILS = {"Authorization": f"Bearer {os.environ['METRICS_TOKEN']}"}


# -- ports, URLs and environments ------------------------------------------------------------------------


def dead_postgres_url() -> str:
    return f"postgres://root@127.0.0.1:{free_port()}/taskhub_nowhere"


def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


# Variables of the pytest process that would change what is tested (config.settings.test sets
# RATE_LIMITS_ENABLED=false for the in-process tests, the CI run sets DATABASE_URL / REDIS_URL): the
# servers get only what a test names, on top of the production defaults.
_NOT_INHERITED = {
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_DEBUG",
    "DATABASE_URL",
    "DATABASE_TEST_NAME",
    "REDIS_URL",
    "PROMETHEUS_MULTIPROC_DIR",
    "TASKHUB_VERSION",
    "HEALTH_CHECK_TIMEOUT",
}


def server_environment(database_url: str, redis_url: str = "", **variables: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _NOT_INHERITED and not name.startswith("OTEL_") and not name.endswith("_ENABLED")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        # The pytest process's keys (config.settings.test), so tokens minted here are valid there.
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        JWT_SIGNING_KEY=os.environ["JWT_SIGNING_KEY"],
        SECURE_SSL_REDIRECT="false",  # plain HTTP on localhost (the probes are exempt anyway)
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=f"taskhub-health-{uuid.uuid4().hex[:8]}",
        PYTHONUNBUFFERED="1",
    )
    env.update(variables)
    return env


# -- a dependency that dies and comes back ----------------------------------------------------------


class Door:
    """A TCP port in front of a real server (`upstream`), or of nothing (`upstream=None`: every
    connection is accepted, counted and hung up on at once, a dependency that is there but broken).

    `close()` is the dependency stopping: the port stops listening (new connections are refused) and
    every connection through it is cut. `open()` brings it back on the same port. `accepted` counts
    the connections that came in, which tells whether a request touched the dependency at all.
    """

    def __init__(self, upstream: tuple[str, int] | None, delay: float = 0.0) -> None:
        self.upstream = upstream
        self.delay = delay  # seconds each connection waits before it reaches the upstream (a slow network)
        self.port = free_port()
        self.accepted = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._spawn(self._accept, listener)

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _cut(sock)
        for thread in self._threads:
            thread.join(5)
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"door-{self.port}")
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            if self.upstream is None:
                _cut(client)
                continue
            if self.delay:
                time.sleep(self.delay)
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _cut(client)
                continue
            for sock in (client, server):
                sock.settimeout(None)
            with self._lock:
                self._sockets |= {client, server}
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            _cut(target)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def door() -> Iterator[Callable[..., Door]]:
    doors: list[Door] = []

    def make(upstream: tuple[str, int] | None, delay: float = 0.0) -> Door:
        opened = Door(upstream, delay)
        opened.open()
        doors.append(opened)
        return opened

    yield make
    for opened in doors:
        opened.close()


# -- server processes ----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            client.request("GET", path, headers=headers or {})
            response = client.getresponse()
            raw = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
        finally:
            client.close()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        return Answer(response.status, answer_headers, body)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL to the process group (granian's workers) if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )


def until_alive(server: Process, name: str) -> Process:
    """`server` once its /healthz answers 200 (within 60 s; the test fails with its log otherwise)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"{name} exited with status {server.process.returncode}:\n{server.log()[-3000:]}")
        try:
            if server.get("/healthz").status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{name} did not answer /healthz within 60 s:\n{server.log()[-3000:]}")


@pytest.fixture
def start_http(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start granian the production way (WSGI, one worker unless `workers` says more, of four threads
    unless `threads` says otherwise) with `server_environment(...)`; ready once /healthz answers 200;
    stopped (with every worker) when the test ends."""
    started: list[Process] = []

    def start(env: dict[str, str], workers: int = 1, threads: int = 4) -> Process:
        port = free_port()
        log_path = tmp_path / f"granian-{port}.log"
        command = [
            str(Path(sys.executable).parent / "granian"),
            "--interface", "wsgi",
            "--workers", str(workers),
            "--blocking-threads", str(threads),
            "--host", "127.0.0.1",
            "--port", str(port),
            "config.wsgi:application",
        ]  # fmt: skip
        server = Process(_spawn(command, env, log_path), port, log_path)
        started.append(server)
        return until_alive(server, "granian")

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_grpc(tmp_path: Path) -> Iterator[Callable[..., tuple[Process, grpc.Channel]]]:
    """Start `manage.py grpcserver` with `server_environment(...)`; ready once a channel connects."""
    started: list[tuple[Process, grpc.Channel]] = []

    def start(env: dict[str, str]) -> tuple[Process, grpc.Channel]:
        port = free_port()
        log_path = tmp_path / f"grpcserver-{port}.log"
        command = [sys.executable, "manage.py", "grpcserver", "--host", "127.0.0.1", "--port", str(port)]
        server = Process(_spawn(command, env, log_path), port, log_path)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel))
        try:
            grpc.channel_ready_future(channel).result(timeout=60)
        except grpc.FutureTimeoutError:
            pytest.fail(f"grpcserver did not listen within 60 s:\n{server.log()[-3000:]}")
        return server, channel

    yield start
    for server, channel in started:
        channel.close()
        server.stop()


def components_of(answer: Answer) -> dict[str, dict[str, Any]]:
    assert isinstance(answer.body, dict), answer
    components: dict[str, dict[str, Any]] = answer.body["components"]
    assert set(components) == {"database", "migrations", "cache"}, answer.body
    return components


def assert_probe(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json", answer.headers
    assert NO_STORE in answer.headers.get("cache-control", ""), answer.headers


# -- the database is dead --------------------------------------------------------------------------------


@pytest.mark.parametrize("dead_database", ["postgresql", "sqlite"])
def test_a_dead_database_is_not_ready_but_alive(dead_database: str, start_http: Callable[..., Process]) -> None:
    """PostgreSQL stopped (nothing listens on its port) or an SQLite file that cannot be opened: the
    process is alive (/healthz 200, which also let it start), not ready (/readyz 503 naming the
    database), and /health says the same with the version and the concerns."""
    url = dead_postgres_url() if dead_database == "postgresql" else DEAD_SQLITE
    server = start_http(server_environment(url))

    alive = server.get("/healthz")
    assert_probe(alive, 200)
    assert alive.body == {"status": "ok"}

    ready = server.get("/readyz")
    assert_probe(ready, 503)
    components = components_of(ready)
    assert ready.body["status"] == "unavailable"
    assert components["database"] == {"status": "unavailable", "error": "OperationalError"}
    assert components["migrations"] == {"status": "unknown", "error": "no database"}
    assert components["cache"] == {"status": "ok", "backend": "local-memory"}  # the cache is not the problem
    assert ready.body["failing"] == ["database"], ready.body  # the migrations could not be checked

    health = server.get("/health", DETAILS)
    assert_probe(health, 503)
    assert health.body["status"] == "unavailable"
    assert health.body["version"] == VERSION
    assert components_of(health)["database"]["status"] == "unavailable"
    assert set(health.body["concerns"]) == CONCERNS

    # Still alive after the failed checks: a dead database must never get the process restarted.
    assert server.get("/healthz").status == 200
    assert "readiness: database unavailable: OperationalError" in server.log()
    # A probe's 503 is an answer, not a server error: no "Service Unavailable" ERROR line per probe.
    assert "Service Unavailable" not in server.log()


def test_healthz_touches_neither_the_database_nor_the_cache(
    start_http: Callable[..., Process], door: Callable[..., Door]
) -> None:
    """PostgreSQL and Redis ports that accept every connection and hang up at once: the process
    starts and answers /healthz any number of times without one connection to either, while a single
    /readyz connects to both (so the count would show it if /healthz did)."""
    database, cache = door(None), door(None)
    server = start_http(
        server_environment(
            f"postgres://root@127.0.0.1:{database.port}/taskhub_nowhere", f"redis://127.0.0.1:{cache.port}/0"
        )
    )
    for _ in range(20):
        assert server.get("/healthz").status == 200
    assert (database.accepted, cache.accepted) == (0, 0)

    ready = server.get("/readyz")
    assert_probe(ready, 503)
    components = components_of(ready)
    assert components["database"]["status"] == "unavailable"
    assert components["cache"]["status"] == "degraded"
    assert database.accepted >= 1 and cache.accepted >= 1

    touched = (database.accepted, cache.accepted)
    for _ in range(5):
        assert server.get("/healthz").status == 200
    assert (database.accepted, cache.accepted) == touched


# -- the cache is dead ----------------------------------------------------------------------------------------


def test_a_dead_cache_is_degraded_but_ready(transactional_db: None, start_http: Callable[..., Process]) -> None:
    """Redis stopped (nothing listens on its port), the database fine: /readyz 200 with status
    `degraded` naming the cache, /health the same, and the API still answers, from the database."""
    owner = UserFactory()
    task = TaskFactory(owner=owner, title="Served without a cache")
    server = start_http(server_environment(test_database_url(), dead_redis_url()))

    ready = server.get("/readyz")
    assert_probe(ready, 200)
    components = components_of(ready)
    assert ready.body["status"] == "degraded"
    assert "failing" not in ready.body
    assert components["cache"]["status"] == "degraded"
    assert components["cache"]["backend"] == "redis"
    assert components["cache"]["error"], components
    assert components["database"]["status"] == "ok"
    assert components["migrations"] == {"status": "ok"}

    health = server.get("/health", DETAILS)
    assert_probe(health, 200)
    assert health.body["status"] == "degraded"
    assert components_of(health)["cache"]["status"] == "degraded"
    assert health.body["concerns"]["cache"] is True

    token = str(TokenObtainSerializer.get_token(owner).access_token)
    answer = server.get(f"/api/v1/tasks/{task.pk}", {"Authorization": f"Bearer {token}"})
    assert answer.status == 200, answer
    assert answer.body["title"] == "Served without a cache"
    assert "readiness: cache unavailable" in server.log()


# -- everything up, and the concerns -------------------------------------------------------------------------


def test_everything_up_is_ok(django_db_setup: None, start_http: Callable[..., Process]) -> None:
    """The migrated test database and this run's cache (Redis when REDIS_URL is set, else local
    memory): ready, status `ok`; /health with the version and the production defaults' concerns."""
    server = start_http(server_environment(test_database_url(), settings.REDIS_URL))

    ready = server.get("/readyz")
    assert_probe(ready, 200)
    components = components_of(ready)
    assert ready.body["status"] == "ok"
    assert "failing" not in ready.body
    assert components["database"]["status"] == "ok"
    assert components["database"]["vendor"] == connection.vendor
    assert components["migrations"] == {"status": "ok"}
    assert components["cache"] == {"status": "ok", "backend": "redis" if settings.REDIS_URL else "local-memory"}

    health = server.get("/health", DETAILS)
    assert_probe(health, 200)
    assert health.body["status"] == "ok"
    assert health.body["version"] == VERSION
    assert health.body["concerns"] == {
        "graphql": True,
        "grpc": True,
        "cache": True,
        "metrics": True,
        "tracing": False,
        "tracing_exporters": [],
        "rate_limits": True,
        "cors": True,
        "compression": True,
        "metrics_multiprocess": False,
    }
    assert server.get("/metrics", DETAILS).status == 200  # metrics on, as /health says


def test_health_reports_the_concerns_switched(
    django_db_setup: None, start_http: Callable[..., Process], tmp_path: Path
) -> None:
    """Each switch flipped from its default shows in /health's `concerns`, and really is flipped:
    no /graphql/ and no /metrics, spans of the console exporter on stdout, the cache `disabled`
    (which is not a fault: status `ok`)."""
    multiprocess_directory = tmp_path / "prometheus"
    multiprocess_directory.mkdir()
    server = start_http(
        server_environment(
            test_database_url(),
            settings.REDIS_URL,
            GRAPHQL_ENABLED="false",
            GRPC_ENABLED="false",
            CACHE_ENABLED="false",
            METRICS_ENABLED="false",
            RATE_LIMITS_ENABLED="false",
            CORS_ENABLED="false",
            COMPRESSION_ENABLED="false",
            OTEL_TRACES_EXPORTER="console",
            OTEL_BSP_SCHEDULE_DELAY="100",  # milliseconds: export the spans soon
            PROMETHEUS_MULTIPROC_DIR=str(multiprocess_directory),
            TASKHUB_VERSION="9.8.7-health-test",
        )
    )

    health = server.get("/health", DETAILS)
    assert_probe(health, 200)
    assert health.body["status"] == "ok"
    assert health.body["version"] == "9.8.7-health-test"
    assert components_of(health)["cache"] == {
        "status": "disabled",
        "backend": "redis" if settings.REDIS_URL else "local-memory",
    }
    assert health.body["concerns"] == {
        "graphql": False,
        "grpc": False,
        "cache": False,
        "metrics": False,
        "tracing": True,
        "tracing_exporters": ["console"],
        "rate_limits": False,
        "cors": False,
        "compression": False,
        "metrics_multiprocess": True,
    }
    assert server.get("/graphql/").status == 404
    assert server.get("/metrics").status == 404
    assert wait_until(lambda: '"name": "GET /health"' in server.log(), timeout=10), server.log()[-2000:]


# -- migrations not applied ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database that exists and is empty: nobody ran migrate on it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    db = connection.settings_dict
    name = f"taskhub_health_fresh_{uuid.uuid4().hex[:12]}"
    admin = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**admin) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield postgres_url(name)
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate(env: dict[str, str], *arguments: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", *arguments],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def test_unapplied_migrations_are_not_ready_until_migrated(
    fresh_database: str, start_http: Callable[..., Process]
) -> None:
    """A database nobody migrated: /readyz 503 naming `migrations` with the pending ones (the
    database itself answers); after a partial migrate the list shrinks; after `migrate` the same
    process is ready, without a restart."""
    every_migration = {f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).graph.nodes}
    env = server_environment(fresh_database)
    server = start_http(env)

    ready = server.get("/readyz")
    assert_probe(ready, 503)
    components = components_of(ready)
    assert ready.body["failing"] == ["migrations"]
    assert components["database"]["status"] == "ok"
    migrations = components["migrations"]
    assert migrations["status"] == "unavailable"
    assert migrations["error"] == "unapplied migrations"
    pending = migrations["pending"]
    assert len(pending) == min(20, len(every_migration)), pending  # the first 20 of the plan
    assert set(pending) <= every_migration
    assert "contenttypes.0001_initial" in pending and "auth.0001_initial" in pending

    health = server.get("/health", DETAILS)
    assert_probe(health, 503)
    assert components_of(health)["migrations"]["pending"] == pending

    migrate(env, "auth")  # contenttypes and auth only
    pending = components_of(server.get("/readyz"))["migrations"]["pending"]
    assert pending and not any(name.startswith(("contenttypes.", "auth.")) for name in pending), pending

    migrate(env)
    ready = server.get("/readyz")
    assert_probe(ready, 200)
    assert ready.body["status"] == "ok"
    assert components_of(ready)["migrations"] == {"status": "ok"}
    assert server.get("/health", DETAILS).status == 200


# -- PostgreSQL and Redis stop and start under a running server -------------------------------------


def _upstreams() -> tuple[tuple[str, int], tuple[str, int]]:
    db = connection.settings_dict
    redis = urlsplit(settings.REDIS_URL)
    return (db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)), (redis.hostname or "127.0.0.1", redis.port or 6379)


@pytest.mark.postgres
@pytest.mark.redis
def test_readiness_follows_postgresql_and_redis_stopping_and_starting(
    django_db_setup: None, start_http: Callable[..., Process], door: Callable[..., Door]
) -> None:
    """One running process, its PostgreSQL and Redis behind doors: each state in turn, and back to
    `ok` each time without a restart (broken connections are dropped, not reused)."""
    postgres, redis = _upstreams()
    database, cache = door(postgres), door(redis)
    redis_db = urlsplit(settings.REDIS_URL).path or "/0"
    server = start_http(
        server_environment(
            postgres_url(connection.settings_dict["NAME"], "127.0.0.1", database.port),
            f"redis://127.0.0.1:{cache.port}{redis_db}",
        )
    )

    def state() -> tuple[int, str, dict[str, str]]:
        answer = server.get("/readyz")
        return answer.status, answer.body["status"], {name: c["status"] for name, c in components_of(answer).items()}

    everything_ok = (200, "ok", {"database": "ok", "migrations": "ok", "cache": "ok"})
    assert state() == everything_ok

    database.close()  # PostgreSQL stops: its connections are cut and nothing listens
    answer = server.get("/readyz")
    assert_probe(answer, 503)
    assert answer.body["failing"] == ["database"]
    assert components_of(answer)["database"]["status"] == "unavailable"
    assert components_of(answer)["cache"]["status"] == "ok"
    assert server.get("/healthz").status == 200
    database.open()
    assert state() == everything_ok

    cache.close()  # Redis stops
    assert state() == (200, "degraded", {"database": "ok", "migrations": "ok", "cache": "degraded"})
    database.close()  # both
    assert state() == (
        503,
        "unavailable",
        {"database": "unavailable", "migrations": "unknown", "cache": "degraded"},
    )
    database.open()
    cache.open()
    assert state() == everything_ok


# -- gRPC health -------------------------------------------------------------------------------------------
# tests/api_grpc/test_health.py covers the in-process server: NOT_SERVING while the database is
# unreachable and SERVING again (both databases), the background check on its own (PostgreSQL), and
# shutdown. What it cannot cover: a `manage.py grpcserver` process whose database is down from the start,
# and one whose PostgreSQL stops and starts under it.


def _check(channel: grpc.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    status: int = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
    return status


@pytest.mark.parametrize("dead_database", ["postgresql", "sqlite"])
def test_grpc_health_is_not_serving_when_the_database_is_dead_from_the_start(
    dead_database: str, user: Any, start_grpc: Callable[..., tuple[Process, grpc.Channel]]
) -> None:
    url = dead_postgres_url() if dead_database == "postgresql" else DEAD_SQLITE
    server, channel = start_grpc(server_environment(url))

    assert _check(channel, "") == NOT_SERVING
    assert _check(channel, SERVICE) == NOT_SERVING
    token = str(TokenObtainSerializer.get_token(user).access_token)
    with pytest.raises(grpc.RpcError) as info:
        pb_grpc.TaskServiceStub(channel).ListTasks(
            pb.ListTasksRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, server.log()[-2000:]


@pytest.mark.postgres
def test_grpc_health_follows_postgresql_stopping_and_starting(
    django_db_setup: None, start_grpc: Callable[..., tuple[Process, grpc.Channel]], door: Callable[..., Door]
) -> None:
    postgres, _ = _upstreams()
    database = door(postgres)
    _, channel = start_grpc(
        server_environment(
            postgres_url(connection.settings_dict["NAME"], "127.0.0.1", database.port),
            GRPC_HEALTH_CHECK_INTERVAL="0.1",
        )
    )
    assert _check(channel, SERVICE) == SERVING

    database.close()
    assert wait_until(lambda: _check(channel, SERVICE) == NOT_SERVING, timeout=10)
    assert _check(channel, "") == NOT_SERVING
    database.open()
    assert wait_until(lambda: _check(channel, SERVICE) == SERVING, timeout=10)
    assert _check(channel, "") == SERVING


# -- in process, with tests/faults.py -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_in_process_readiness_follows_the_database() -> None:
    """The views themselves (test settings, this run's database): ready, then the database made
    unreachable for real (tests/faults.py), then ready again. /healthz answers throughout."""
    client = Client()
    assert client.get("/readyz").status_code == 200

    with database_unreachable():
        assert client.get("/healthz").status_code == 200
        answer = client.get("/readyz")
        assert answer.status_code == 503
        body = answer.json()
        assert body["failing"] == ["database"]
        assert body["components"]["database"]["status"] == "unavailable"
        assert client.get("/health", headers=DETAILS).status_code == 503

    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["components"]["database"]["status"] == "ok"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_slower_than_the_check_is_not_ready_never_an_error(door: Callable[..., Door]) -> None:
    """A connection that takes longer than HEALTH_CHECK_TIMEOUT to open (PostgreSQL reached through
    a slow network, as right after it restarts) is "unavailable", a 503, not a 500: the check's time
    budget runs out before its statement, which the check must count as the database failing."""
    client = Client()
    settings_dict = connection.settings_dict
    slow = door((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)), delay=1.0)
    with default_database_settings(HOST="127.0.0.1", PORT=str(slow.port)), override_settings(HEALTH_CHECK_TIMEOUT=0.3):
        answer = client.get("/readyz")
    assert answer.status_code == 503, answer.content
    assert answer.json()["components"]["database"]["status"] == "unavailable"
    assert slow.accepted >= 1  # it did reach the (slow) database
    assert client.get("/readyz").status_code == 200
