"""Metrics of real processes: gunicorn with two workers and `manage.py grpcserver` sharing one
PROMETHEUS_MULTIPROC_DIR, a worker killed with SIGKILL, the gRPC server's own --metrics-port, and the
real tools: `promtool check metrics` on a live scrape and a real Prometheus scraping the service.

The servers run the production settings (fresh keys, plain HTTP on loopback, no rate limits) against
the database and cache of this test session: the embedded SQLite file, or PostgreSQL and Redis when
DATABASE_URL / REDIS_URL name them. Every multiprocess directory is a fresh temporary one, so each
scrape holds exactly what the test sent: the totals are compared exactly, not as deltas.

promtool and prometheus come from Debian's `prometheus` package (`make prometheus`, part of
`make install-dev`); the tests that need them are skipped, with a loud reason, only when missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from google.protobuf.field_mask_pb2 import FieldMask

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from core.auth import api_key_create
from tests.factories import TaskFactory, UserFactory
from tests.faults import row_locked, terminate_other_connections
from tests.live import binary, free_port
from tests.observability.metrics_live import (
    LabelKey,
    Process,
    Scrape,
    active_by_pid,
    durations_of,
    files_by_pid,
    port_open,
    production_environment,
    requests_by_pid,
    stop_all,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pass-word-123"  # tests.factories.UserFactory
REST_TASK = "/api/v1/tasks/{task_id}"
GET_TASK = "/tasks.v1.TaskService/GetTask"
SCRAPE: LabelKey = ("http", "GET", "/metrics", "200")
TIMEOUT = 20.0
# The servers inherit METRICS_TOKEN from this process (config.settings.test); /metrics needs it.
METRICS_AUTH = {"Authorization": f"Bearer {os.environ['METRICS_TOKEN']}"}
IDLE = {"rest": 0.0, "graphql": 0.0, "grpc": 0.0, "http": 1.0}  # only the scrape itself is in flight


# -- the servers ---------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """gunicorn (2 workers) and grpcserver sharing one multiprocess directory."""

    http_port: int
    grpc_port: int
    directory: Path
    gunicorn: Process
    grpcserver: Process
    sent: Counter[LabelKey] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def count(self, key: LabelKey) -> None:
        with self.lock:
            self.sent[key] += 1

    def scrape(self) -> Scrape:
        response = requests.get(self.url("/metrics"), headers=METRICS_AUTH, timeout=TIMEOUT)
        assert response.status_code == 200, (response.text[:500], self.diagnostics()[-5000:])
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        self.count(SCRAPE)  # counted once it is answered: the next scrape shows it
        return Scrape(response.text)

    def workers(self) -> set[int]:
        return self.gunicorn.children()

    def diagnostics(self) -> str:
        return f"gunicorn:\n{self.gunicorn.output()}\ngrpcserver:\n{self.grpcserver.output()}"


@pytest.fixture
def stack(transactional_db: None, tmp_path: Path) -> Iterator[Stack]:
    directory = tmp_path / "prometheus-multiproc"
    directory.mkdir()
    http_port, grpc_port = free_port(), free_port()
    env = production_environment(
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="4",
        GUNICORN_BIND=f"127.0.0.1:{http_port}",
        GRPC_SHUTDOWN_GRACE="1",
    )
    processes: list[Process] = []
    try:
        gunicorn = Process(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi:application"],
            env,
            tmp_path / "gunicorn.log",
        )
        processes.append(gunicorn)
        grpcserver = Process(
            [sys.executable, "manage.py", "grpcserver", "--port", str(grpc_port)], env, tmp_path / "grpcserver.log"
        )
        processes.append(grpcserver)
        running = Stack(http_port, grpc_port, directory, gunicorn, grpcserver)
        started = wait_until(
            lambda: port_open(http_port) and port_open(grpc_port) and len(gunicorn.children()) == 2, timeout=30
        )
        assert started and gunicorn.alive() and grpcserver.alive(), running.diagnostics()
        yield running
    finally:
        stop_all(processes)
        terminate_other_connections()  # PostgreSQL: sessions a killed worker left behind


@dataclass
class Caller:
    """Sends the calls of a test through real clients and counts each one under the labels it must get."""

    stack: Stack
    user: Any
    access: str = ""
    tasks: list[str] = field(default_factory=list)

    def log_in(self) -> None:
        response = requests.post(
            self.stack.url("/api/v1/auth/token"),
            json={"username": self.user.username, "password": PASSWORD},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, (response.text, self.stack.diagnostics())
        self.stack.count(("rest", "POST", "/api/v1/auth/token", "200"))
        self.access = response.json()["access"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    def rest(self, session: requests.Session | None = None, *, task_id: str | None = None, status: int = 200) -> None:
        http = session or requests
        headers = self.headers if session is not None else {**self.headers, "Connection": "close"}
        response = http.get(
            self.stack.url(f"/api/v1/tasks/{task_id or self.tasks[0]}"), headers=headers, timeout=TIMEOUT
        )
        assert response.status_code == status, response.text
        self.stack.count(("rest", "GET", REST_TASK, str(status)))

    def rest_list(self, session: requests.Session) -> None:
        response = session.get(self.stack.url("/api/v1/tasks"), headers=self.headers, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        self.stack.count(("rest", "GET", "/api/v1/tasks", "200"))

    def graphql(self, session: requests.Session | None = None, *, mutation: bool = False) -> None:
        http = session or requests
        headers = self.headers if session is not None else {**self.headers, "Connection": "close"}
        if mutation:
            document, endpoint = (
                'mutation CreateTask { createTask(input: {title: "live"}) { id } }',
                "mutation CreateTask",
            )
        else:
            document, endpoint = "query TaskList { tasks { edges { node { id } } } }", "query TaskList"
        response = http.post(self.stack.url("/graphql/"), json={"query": document}, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        self.stack.count(("graphql", "POST", endpoint, "200"))

    def grpc_calls(self, channels: int = 2, ok: int = 5, not_found: int = 3, unauthenticated: int = 2) -> None:
        metadata = (("authorization", f"Bearer {self.access}"),)
        for _ in range(channels):
            with grpc.insecure_channel(f"127.0.0.1:{self.stack.grpc_port}") as channel:
                stub = pb_grpc.TaskServiceStub(channel)
                for _ in range(ok):
                    stub.GetTask(pb.GetTaskRequest(id=self.tasks[0]), metadata=metadata, timeout=TIMEOUT)
                    self.stack.count(("grpc", "POST", GET_TASK, "OK"))
                for code, count, request_metadata in (
                    (grpc.StatusCode.NOT_FOUND, not_found, metadata),
                    (grpc.StatusCode.UNAUTHENTICATED, unauthenticated, ()),
                ):
                    for _ in range(count):
                        with pytest.raises(grpc.RpcError) as error:
                            stub.GetTask(
                                pb.GetTaskRequest(id=str(uuid.uuid4())), metadata=request_metadata, timeout=TIMEOUT
                            )
                        assert error.value.code() == code, error.value.details()
                        self.stack.count(("grpc", "POST", GET_TASK, code.name))

    def http_and_graphql_on_several_connections(self, connections: int = 6) -> None:
        """Each thread its own keep-alive connection, all at once: both workers get some."""
        errors: list[BaseException] = []

        def run(index: int) -> None:
            try:
                with requests.Session() as session:
                    for _ in range(4):
                        self.rest(session)
                    self.rest(session, task_id=str(uuid.uuid4()), status=404)
                    self.rest_list(session)
                    self.graphql(session)
                    self.graphql(session, mutation=index == 0)
            except BaseException as exc:  # reported by the test's thread below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(index,)) for index in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors

    def until_both_workers_served_both_protocols(self) -> None:
        """New connections until each worker has answered REST and GraphQL (the kernel picks the worker)."""
        for _ in range(200):
            served = self.served_by_worker()
            if len(served) == 2 and all({"rest", "graphql"} <= protocols for protocols in served.values()):
                return
            self.rest()
            self.graphql()
        pytest.fail(f"one worker got no requests: {self.served_by_worker()}")

    def served_by_worker(self) -> dict[int, set[str]]:
        by_pid = requests_by_pid(self.stack.directory)
        return {pid: {key[0] for key in by_pid.get(pid, {})} for pid in self.stack.workers()}


@pytest.fixture
def caller(stack: Stack) -> Caller:
    user = UserFactory()
    # The test settings hash with MD5, which the production settings of the servers do not accept.
    # Few iterations: the server checks the count stored in the hash (and upgrades it on log-in).
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])
    tasks = [str(TaskFactory(owner=user).pk) for _ in range(3)]
    return Caller(stack, user, tasks=tasks)


def assert_exact(scraped: Scrape, sent: Counter[LabelKey]) -> None:
    assert scraped.requests() == dict(sent)
    assert scraped.durations() == durations_of(sent)


# -- exact totals over two workers and the gRPC process -----------------------------------------------------------


def test_totals_are_exact_over_two_workers_and_the_grpc_process_and_survive_killed_processes(
    stack: Stack, caller: Caller
) -> None:
    caller.log_in()
    caller.http_and_graphql_on_several_connections()
    caller.until_both_workers_served_both_protocols()
    caller.grpc_calls()
    sent = Counter(stack.sent)

    scraped = stack.scrape()

    assert_exact(scraped, sent)
    assert scraped.active() == IDLE
    assert sum(v for (protocol, *_), v in scraped.requests().items() if protocol == "grpc") == 2 * (5 + 3 + 2)
    # What each process counted in its own file adds up to the scrape: two workers and the gRPC server.
    by_pid = requests_by_pid(stack.directory)
    workers = stack.workers()
    assert set(by_pid) == workers | {stack.grpcserver.pid}, (by_pid.keys(), workers, stack.grpcserver.pid)
    assert by_pid[stack.grpcserver.pid] == {key: value for key, value in sent.items() if key[0] == "grpc"}
    assert all(by_pid[pid] for pid in workers)
    summed: Counter[LabelKey] = Counter()
    for counts in by_pid.values():
        summed.update(counts)
    assert summed == stack.sent  # now with the scrape above

    # A worker dies with a request in flight: its share of api_active_requests goes with it.
    outcome: list[Any] = []

    def patch() -> None:
        url = stack.url(f"/api/v1/tasks/{caller.tasks[1]}")
        try:
            outcome.append(requests.patch(url, json={"title": "never"}, headers=caller.headers, timeout=30))
        except requests.ConnectionError as exc:
            outcome.append(exc)

    with row_locked(caller.tasks[1]):
        in_flight = threading.Thread(target=patch)
        in_flight.start()
        busy = wait_until(
            lambda: [pid for pid, active in active_by_pid(stack.directory).items() if active.get("rest") == 1],
            timeout=4,
        )
        assert busy and set(busy) <= workers, (active_by_pid(stack.directory), stack.diagnostics())
        assert stack.scrape().active() == {**IDLE, "rest": 1}
        [victim] = busy
        os.kill(victim, signal.SIGKILL)
        in_flight.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError), outcome

    replaced = wait_until(lambda: len(stack.workers()) == 2 and victim not in stack.workers(), timeout=30)
    assert replaced, (stack.workers(), stack.diagnostics())
    # gunicorn's child_exit hook dropped the dead worker's live gauge before it started the replacement.
    assert not [name for name in files_by_pid(stack.directory).get(victim, []) if name.startswith("gauge_live")]

    after_worker = stack.scrape()

    # The dead worker's counts stay (totals never go backwards); the request it died in was never answered.
    assert_exact(after_worker, stack.sent - Counter({SCRAPE: 1}))
    assert after_worker.active() == IDLE

    # The gRPC server dies with a call in flight (no gunicorn to tell): the scrape drops its live gauge.
    metadata = (("authorization", f"Bearer {caller.access}"),)
    update = pb.UpdateTaskRequest(
        id=caller.tasks[2], task=pb.Task(title="never"), update_mask=FieldMask(paths=["title"])
    )
    with row_locked(caller.tasks[2]), grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
        call = pb_grpc.TaskServiceStub(channel).UpdateTask.future(update, metadata=metadata, timeout=30)
        assert wait_until(lambda: active_by_pid(stack.directory).get(stack.grpcserver.pid, {}).get("grpc") == 1, 4)
        assert stack.scrape().active() == {**IDLE, "grpc": 1}
        os.kill(stack.grpcserver.pid, signal.SIGKILL)
        assert call.exception(10).code() == grpc.StatusCode.UNAVAILABLE
    stack.grpcserver.popen.wait(10)

    after_grpc = stack.scrape()

    assert_exact(after_grpc, stack.sent - Counter({SCRAPE: 1}))
    assert after_grpc.active() == {"rest": 0, "graphql": 0, "http": 1}
    assert stack.grpcserver.pid not in active_by_pid(stack.directory)


# -- the gRPC server's own port, without a multiprocess directory -------------------------------------------------


def test_grpcserver_metrics_port_serves_its_own_calls(transactional_db: None, tmp_path: Path) -> None:
    user = UserFactory()
    task = TaskFactory(owner=user)
    _, raw_key = api_key_create(user=user, name="metrics test")
    grpc_port, metrics_port = free_port(), free_port()
    env = production_environment(GRPC_SHUTDOWN_GRACE="1", LOG_LEVEL="INFO")  # INFO: its start-up lines
    server = Process(
        [sys.executable, "manage.py", "grpcserver", "--port", str(grpc_port), "--metrics-port", str(metrics_port)],
        env,
        tmp_path / "grpcserver.log",
    )
    try:
        assert wait_until(lambda: port_open(grpc_port) and port_open(metrics_port), timeout=30), server.output()
        # The line is logged once the port is open, so it may come a moment after port_open() is true.
        announced = f"gRPC: metrics on http://127.0.0.1:{metrics_port}/metrics"
        assert wait_until(lambda: announced in server.output(), timeout=10), server.output()
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb_grpc.TaskServiceStub(channel)
            for _ in range(3):
                stub.GetTask(pb.GetTaskRequest(id=str(task.pk)), metadata=(("x-api-key", raw_key),), timeout=TIMEOUT)
            for metadata, code in (((("x-api-key", raw_key),), "NOT_FOUND"), ((), "UNAUTHENTICATED")):
                with pytest.raises(grpc.RpcError) as error:
                    stub.GetTask(pb.GetTaskRequest(id=str(uuid.uuid4())), metadata=metadata, timeout=TIMEOUT)
                assert error.value.code().name == code
            created = stub.CreateTask(
                pb.CreateTaskRequest(title="x"), metadata=(("x-api-key", raw_key),), timeout=TIMEOUT
            )
            assert created.task.title == "x"

        response = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=TIMEOUT)
    finally:
        server.stop()

    assert response.status_code == 200
    scraped = Scrape(response.text)
    sent = {
        ("grpc", "POST", GET_TASK, "OK"): 3,
        ("grpc", "POST", GET_TASK, "NOT_FOUND"): 1,
        ("grpc", "POST", GET_TASK, "UNAUTHENTICATED"): 1,
        ("grpc", "POST", "/tasks.v1.TaskService/CreateTask", "OK"): 1,
    }
    assert scraped.requests() == sent
    assert scraped.durations() == durations_of(sent)
    assert scraped.active() == {"grpc": 0}
    assert scraped.value("django_db_execute_total") > 0  # django-prometheus counts this process's queries too
    check = subprocess.run(
        [binary("promtool"), "check", "metrics"], input=response.text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_grpcserver_with_a_metrics_port_stops_on_a_sigterm_sent_as_soon_as_it_listens(
    transactional_db: None, tmp_path: Path
) -> None:
    """With the metrics server's thread running, a SIGTERM the kernel hands to another thread used to
    leave the main thread blocked for good (9 times in 10 here): the handler never ran."""
    grpc_port, metrics_port = free_port(), free_port()
    command = ["manage.py", "grpcserver", "--port", str(grpc_port), "--metrics-port", str(metrics_port)]
    env = production_environment(LOG_LEVEL="INFO")  # INFO: its start-up and shutdown lines
    server = Process([sys.executable, *command], env, tmp_path / "grpcserver.log")
    try:
        assert wait_until(lambda: port_open(grpc_port) and port_open(metrics_port), timeout=30), server.output()
        server.popen.send_signal(signal.SIGTERM)
        try:
            code = server.popen.wait(5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"grpcserver ignored SIGTERM:\n{server.output()}")
    finally:
        server.stop()

    assert code == 0, server.output()
    assert "gRPC: SIGTERM, shutting down" in server.output()


# -- the real tools -----------------------------------------------------------------------------------------------


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[int]:
    """A real Prometheus on loopback scraping the gunicorn port every second, with the metrics token
    (`authorization: credentials:`, as a deployment configures it); yields its port."""
    executable = binary("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: taskhub\n    scrape_interval: 1s\n"
        f"    authorization:\n      type: Bearer\n      credentials: '{os.environ['METRICS_TOKEN']}'\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{stack.http_port}']\n"
    )
    server = Process(
        [
            executable,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        os.environ,
        tmp_path / "prometheus.log",
    )
    try:
        assert wait_until(lambda: ready(port), timeout=30, interval=0.1), server.output()
        yield port
    finally:
        server.stop()


def ready(port: int) -> bool:
    """Prometheus answers queries once its storage is open (503 until then)."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def query(port: int, promql: str) -> list[dict[str, Any]]:
    response = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": promql}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_promtool_passes_a_live_scrape_and_a_real_prometheus_scrapes_it_and_answers_promql(
    stack: Stack, caller: Caller, prometheus: int
) -> None:
    """Prometheus scrapes all along (its service discovery hands it the target only after ~5 s, so it
    starts first); once every call is in, its sum is exactly what was sent."""
    promtool = binary("promtool")
    caller.log_in()
    caller.http_and_graphql_on_several_connections(connections=3)
    caller.grpc_calls(channels=1)
    assert requests.get(stack.url(f"/no-such-page/{uuid.uuid4()}"), timeout=TIMEOUT).status_code == 404
    stack.count(("http", "GET", "unmatched", "404"))
    stack.scrape()  # so that the next one has the /metrics series too

    # promtool: the live text of every family (ours and django-prometheus'), with no lint finding.
    text = stack.scrape().text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == "", check.stdout + check.stderr
    for family in ("api_requests_total", "api_request_duration_seconds_bucket", "django_db_execute_total"):
        assert f"\n{family}{{" in text, family

    # Prometheus: every request but the scrapes (its own ones are counted too), exactly.
    sent = Counter({key: value for key, value in stack.sent.items() if key[2] != "/metrics"})
    port = prometheus

    def answered() -> float | None:
        result = query(port, 'sum(api_requests_total{endpoint!="/metrics"})')
        return float(result[0]["value"][1]) if result else None

    # Prometheus' own scrapes are counted too (under /metrics): every other request is ours, exactly.
    assert wait_until(lambda: answered() == sum(sent.values()), timeout=30, interval=0.25), (
        answered(),
        sum(sent.values()),
    )
    by_protocol = {
        row["metric"]["protocol"]: float(row["value"][1])
        for row in query(port, 'sum by (protocol) (api_requests_total{endpoint!="/metrics"})')
    }
    expected: Counter[str] = Counter()
    for (protocol, *_), value in sent.items():
        expected[protocol] += value
    assert by_protocol == {protocol: float(value) for protocol, value in expected.items()}
    # A scrape is counted once answered, so a later scrape shows it: Prometheus sees its own scrapes too.
    ours = stack.sent[SCRAPE]

    def scrapes() -> float:
        return sum(float(row["value"][1]) for row in query(port, 'api_requests_total{endpoint="/metrics"}'))

    assert wait_until(lambda: scrapes() > ours, timeout=10, interval=0.25), (scrapes(), ours)
    [total] = query(port, "sum(api_requests_total)")
    assert float(total["value"][1]) >= sum(sent.values()) + ours + 1
    [up] = query(port, 'up{job="taskhub"}')
    assert up["value"][1] == "1"
    # The same scrape without the token is refused: Prometheus' scrapes succeed because it sends it.
    assert requests.get(stack.url("/metrics"), timeout=TIMEOUT).status_code == 401
    [grpc_ok] = query(port, f'api_requests_total{{protocol="grpc",endpoint="{GET_TASK}",status="OK"}}')
    assert float(grpc_ok["value"][1]) == sent[("grpc", "POST", GET_TASK, "OK")]
