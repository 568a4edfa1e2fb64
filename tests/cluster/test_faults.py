"""Faults under load: Redis stopped and stalled, PostgreSQL restarted, a web replica killed, every
replica restarted one at a time — while a bounded load of reads and writes goes through the proxy.

After each fault the client's record is checked against the database: every acknowledged create is
there (0 lost), no Idempotency-Key made two tasks, every acknowledged update is there, and every task
reads at the database's version through every replica (0 stale). Each test prints its figures: the
runbooks in docs/deploy.md and the issue notes quote them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from tests.cluster import cluster
from tests.cluster.load import TITLE_PREFIX, Load, Tally, is_failure

WORKERS = 8
WARM_UP = 3.0  # seconds of load before the fault
# docs/architecture.md ("Cache"): other processes stop seeing an entry a write replaced within REPAIR_INTERVAL
# (0.2 s) plus one Redis timeout (0.25 s) after Redis answers again; with a margin for a loaded machine.
REPAIR_BOUND = 1.0
SETTLE = 3.0  # seconds of load after recovery


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    """Whatever a fault test did or failed to undo, the next test starts with every service running."""
    yield
    for service in ("postgres", "redis", *cluster.WEB_REPLICAS, *cluster.GRPC_REPLICAS):
        name = cluster.container(service)
        state = cluster.podman("inspect", "--format", "{{.State.Status}}", name).strip()
        if state == "paused":
            cluster.podman("unpause", name)
        elif state != "running":
            cluster.podman("start", name)
    for service in (*cluster.WEB_REPLICAS, *cluster.GRPC_REPLICAS):
        assert cluster.wait_for(lambda service=service: replica_ready(service), timeout=60) is not None, service


@pytest.fixture
def load() -> Iterator[Load]:
    generator = Load(cluster.HTTP_URL, cluster.GRPC_TARGET, cluster.api_keys(WORKERS))
    generator.start()
    time.sleep(WARM_UP)
    try:
        yield generator
    finally:
        generator.stop()


# -- what the database says about the client's record ------------------------------------------------------


def check_record(tally: Tally, name: str, **figures: object) -> dict[str, object]:
    """Lost writes, duplicate keys and stale reads on every replica; printed with the scenario's figures."""
    created = dict(tally.created)
    ids = list(created.values())
    rows = {row[0]: int(row[1]) for row in _rows_of(ids)}
    lost_creates = [task_id for task_id in ids if task_id not in rows]
    lost_updates = [(t, v, rows.get(t)) for t, v in tally.acked_version.items() if rows.get(t, 0) < v]
    duplicates = cluster.psql(
        f"SELECT title, count(*) FROM tasks_task WHERE title LIKE '{TITLE_PREFIX}%' GROUP BY title HAVING count(*) > 1"
    )
    stale_after = _stale_on_every_replica(tally, rows)
    summary = {
        "scenario": name,
        **tally.summary(),
        "lost_creates": len(lost_creates),
        "lost_updates": len(lost_updates),
        "duplicate_keys": len(duplicates),
        "stale_after_on_replicas": len(stale_after),
        **figures,
    }
    print(f"\n{name}: {json.dumps(summary)}")
    assert lost_creates == [], lost_creates
    assert lost_updates == [], lost_updates
    assert duplicates == [], duplicates
    assert stale_after == [], stale_after[:10]
    assert tally.given_up == 0
    return summary


def _rows_of(ids: list[str]) -> list[list[str]]:
    rows: list[list[str]] = []
    for start in range(0, len(ids), 500):
        chunk = ",".join(f"'{task_id}'" for task_id in ids[start : start + 500])
        if chunk:
            rows += cluster.psql(f"SELECT id, version FROM tasks_task WHERE id IN ({chunk})")
    return rows


def _stale_on_every_replica(tally: Tally, rows: dict[str, int]) -> list[tuple[str, str, int, int]]:
    """Read every task the load touched through each web and gRPC replica: all at the database's version."""
    stale = []
    sessions = {service: cluster.replica_session() for service in cluster.WEB_REPLICAS}
    urls = {service: cluster.web_url(service) for service in cluster.WEB_REPLICAS}
    channels = {service: grpc.insecure_channel(cluster.grpc_target(service)) for service in cluster.GRPC_REPLICAS}
    owner_key = dict(tally.owner_key)
    for task_id, version in rows.items():
        key = owner_key[task_id]  # a worker's key reads only its own tasks
        for service, session in sessions.items():
            got = _read_allowed(session, f"{urls[service]}/api/v1/tasks/{task_id}", key)
            body = got.json()
            # Not a task (a problem document): say which, rather than a KeyError with nothing to place it by.
            assert "version" in body, (task_id, service, got.status_code, body)
            if body["version"] != version:
                stale.append((task_id, service, body["version"], version))
        for service, channel in channels.items():
            task = _get_allowed(pb_grpc.TaskServiceStub(channel), task_id, key)
            if task.version != version:
                stale.append((task_id, service, task.version, version))
    for channel in channels.values():
        channel.close()
    return stale


# The check reads every task of a worker on each of the four replicas with the worker's key, in the same
# minute as the load's own requests with it: together they can pass the user's rate limit (600 a minute),
# and a refused read says nothing about staleness. A refused read waits what the answer says and is sent
# again, as a client would, within CHECK_WAIT.
CHECK_WAIT = 90.0


def _read_allowed(session: requests.Session, url: str, key: str) -> requests.Response:
    deadline = time.monotonic() + CHECK_WAIT
    while True:
        got = session.get(url, headers={"X-API-Key": key}, timeout=10)
        if got.status_code != 429 or time.monotonic() > deadline:
            return got
        time.sleep(_seconds(got.headers.get("Retry-After")))


def _get_allowed(stub: pb_grpc.TaskServiceStub, task_id: str, key: str) -> pb.Task:
    deadline = time.monotonic() + CHECK_WAIT
    while True:
        try:
            reply = stub.GetTask(pb.GetTaskRequest(id=task_id), metadata=[("x-api-key", key)], timeout=10)
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            time.sleep(_seconds(dict(error.trailing_metadata() or ()).get("retry-after")))
        else:
            return reply.task


def _seconds(retry_after: str | None) -> float:
    return float(retry_after) if retry_after and retry_after.isdigit() else 1.0


# -- faults ------------------------------------------------------------------------------------------------


@contextmanager
def timed(figures: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    figures[name] = round(time.monotonic() - started, 2)


def grpc_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def replica_ready(service: str) -> bool:
    if service in cluster.WEB_REPLICAS:
        return cluster.ready(cluster.web_url(service))
    return grpc_serving(cluster.grpc_target(service))


def test_redis_stopped_for_10_seconds(load: Load) -> None:
    """No 5xx while Redis is down, writes go on, and the cache is used again once Redis is back."""
    figures: dict[str, float] = {}
    outage_start = time.monotonic()
    cluster.podman("stop", "-t", "2", cluster.container("redis"))
    time.sleep(10)
    writes_during = load.tally.outcomes(since=outage_start, until=time.monotonic())
    cluster.podman("start", cluster.container("redis"))
    back = time.monotonic()
    # Redis starts empty: its first hits are the replicas reading what they cached again.
    figures["cache_back_s"] = cluster.wait_for(lambda: _redis_stat("keyspace_hits") > 0, timeout=60, interval=0.1)
    time.sleep(SETTLE)
    load.stop()
    outcomes = load.tally.outcomes(since=outage_start, until=back)
    summary = check_record(load.tally, "redis stopped 10 s", outcomes_during_outage=dict(outcomes), **figures)
    assert load.tally.server_errors() == []
    assert summary["failed"] == 0, summary["failures"]
    assert writes_during["201"] + writes_during["200"] > 0  # writes kept succeeding during the outage
    assert figures["cache_back_s"] is not None


def _redis_stat(name: str) -> int:
    info = cluster.podman("exec", cluster.container("redis"), "redis-cli", "INFO", "stats")
    for line in info.splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"no {name} in INFO stats")


def test_redis_stalled_leaves_no_stale_read_on_any_replica(load: Load) -> None:
    """Two 2-second stalls (`DEBUG SLEEP`) under load: afterwards every replica reads every task fresh."""
    stalls = []
    for _ in range(2):
        began = time.monotonic()
        cluster.podman("exec", cluster.container("redis"), "redis-cli", "DEBUG", "SLEEP", "2")
        stalls.append((began, time.monotonic()))
        time.sleep(1)
    time.sleep(SETTLE)
    load.stop()

    def during_a_stall(at: float) -> bool:  # or within the documented repair bound after one
        return any(began <= at < ended + REPAIR_BOUND for began, ended in stalls)

    first_stall = stalls[0][0]
    stale_after = [s for s in load.tally.stale_reads if s[0] >= first_stall and not during_a_stall(s[0])]
    # Allowed, and printed to be understood: when each was read (seconds from the first stall), how,
    # and its version against the one acknowledged; the stalls' own seconds beside them.
    tolerated = [(round(at - first_stall, 3), via, seen, acked) for at, _, seen, acked, via in load.tally.stale_reads]
    summary = check_record(
        load.tally,
        "redis stalled 2 x 2 s",
        stale_reads_after_stalls=len(stale_after),
        stale_reads_in_the_stalls_or_repair=tolerated,
        stalls_s=[(round(began - first_stall, 3), round(ended - first_stall, 3)) for began, ended in stalls],
    )
    assert stale_after == []
    assert load.tally.server_errors() == []
    assert summary["failed"] == 0, summary["failures"]


def test_postgresql_restarted(load: Load) -> None:
    """/readyz says 503 during the outage, writes get 503 + Retry-After (never 500), back within 5 s."""
    readyz: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch_readyz() -> None:
        while not stop.is_set():
            try:
                status = requests.get(f"{cluster.HTTP_URL}/readyz", timeout=2).status_code
            except requests.RequestException:
                status = 0
            readyz.append((time.monotonic(), status))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_readyz, daemon=True)
    watcher.start()
    outage_start = time.monotonic()
    # Stop, stay down long enough for the probes to see it, then start: a restart with a visible outage.
    cluster.podman("stop", "-t", "10", cluster.container("postgres"))
    time.sleep(3)
    cluster.podman("start", cluster.container("postgres"))
    pg_back = cluster.wait_for(_pg_ready, timeout=60, interval=0.05)
    assert pg_back is not None
    pg_ready_at = time.monotonic()
    service_back = cluster.wait_for(
        lambda: readyz[-1][1] == 200 and readyz[-1][0] > pg_ready_at, timeout=30, interval=0.05
    )
    time.sleep(SETTLE)
    stop.set()
    watcher.join()
    load.stop()
    during = [status for at, status in readyz if outage_start < at < pg_ready_at]
    errors = load.tally.server_errors()
    unavailable = [a for a in errors if a.outcome == "503"]
    summary = check_record(
        load.tally,
        "postgresql restarted",
        readyz_503_during=during.count(503),
        write_503=len(unavailable),
        service_back_after_postgres_s=service_back,
    )
    assert 503 in during
    assert [a for a in errors if a.outcome != "503"] == []  # never a 500
    assert all(a.retry_after for a in unavailable)
    assert service_back is not None and service_back <= 5
    assert summary["lost_creates"] == 0


def _pg_ready() -> bool:
    env = cluster.env_file()
    result = cluster.podman(
        "exec", cluster.container("postgres"), "pg_isready", "-U", env.get("POSTGRES_USER", "taskhub"), check=False
    )
    return "accepting connections" in result


def test_a_web_replica_killed(load: Load) -> None:
    """SIGKILL one web replica: the proxy stops sending to it; failed requests are retried with the same
    key and nothing is duplicated or lost."""
    killed_at = time.monotonic()
    cluster.podman("kill", "-s", "KILL", cluster.container("web1"))
    time.sleep(5)
    failed_after = [
        a for a in load.tally.attempts if a.at > killed_at + 2 and is_failure(a.outcome) and a.kind != "grpc-read"
    ]
    cluster.podman("start", cluster.container("web1"))
    back = cluster.wait_for(lambda: replica_ready("web1"), timeout=60)
    time.sleep(SETTLE)
    load.stop()
    failed = [a for a in load.tally.attempts if is_failure(a.outcome)]
    check_record(load.tally, "web replica killed", failed_at_kill=len(failed), replica_back_s=back)
    assert failed_after == []  # after the first failures the proxy sends nothing more to the dead replica
    assert back is not None


def proxy_fail_timeout() -> float:
    """Seconds the proxy leaves a replica out after a failed connection (`fail_timeout` in its config)."""
    config = (cluster.ROOT / "docker" / "nginx" / "nginx.conf").read_text()
    return max(float(value) for value in re.findall(r"fail_timeout=(\d+)s", config))


def test_a_rolling_restart_of_every_replica_fails_no_request(load: Load) -> None:
    """SIGTERM one replica at a time; start it; wait until it is ready and the proxy takes it back (its
    fail_timeout), then the next: the procedure docs/deploy.md gives."""
    figures: dict[str, float] = {}
    rest = proxy_fail_timeout() + 1
    for service in (*cluster.WEB_REPLICAS, *cluster.GRPC_REPLICAS):
        with timed(figures, service):
            cluster.podman("stop", "-t", "30", cluster.container(service))
            cluster.podman("start", cluster.container(service))
            assert cluster.wait_for(lambda service=service: replica_ready(service), timeout=60) is not None
        time.sleep(rest)
    time.sleep(SETTLE)
    load.stop()
    summary = check_record(load.tally, "rolling restart", restart_s=figures, proxy_rest_s=rest)
    assert summary["failed"] == 0, (summary["outcomes"], summary["failures"])
