"""Two web and two gRPC replicas behind the proxy behave as one service.

Each test talks to the replicas the way the issue names: through the proxy, or to one replica at a
time on the cluster network (which this host reaches; nothing but the proxy is published).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import requests

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from tests.cluster import cluster


def _wait_for_window_start(seconds: int, room: float) -> None:
    """Wait until at least `room` seconds of the current fixed rate-limit window are left."""
    left = seconds - time.time() % seconds
    if left < room:
        time.sleep(left + 0.05)


def test_a_rate_limit_holds_across_every_replica_of_both_protocols() -> None:
    """limit + 20 requests of one user, spread over web1, web2, grpc1 and grpc2: exactly `limit` pass."""
    (key,) = cluster.api_keys(1)
    # The replicas' own per-minute limit of the "user" scope, as their settings say.
    rate = cluster.manage(
        "shell", "-c", "from django.conf import settings; print(settings.RATE_LIMITS['user'][0])"
    ).split()[-1]
    assert rate.endswith("/m"), rate
    limit = int(rate.split("/")[0])
    total = limit + 20
    sessions = {service: cluster.replica_session() for service in cluster.WEB_REPLICAS}
    channels = {service: grpc.insecure_channel(cluster.grpc_target(service)) for service in cluster.GRPC_REPLICAS}
    stubs = {service: pb_grpc.TaskServiceStub(channel) for service, channel in channels.items()}
    urls = {service: cluster.web_url(service) for service in cluster.WEB_REPLICAS}
    targets = [*cluster.WEB_REPLICAS, *cluster.GRPC_REPLICAS]

    def one(index: int) -> tuple[str, str]:
        service = targets[index % len(targets)]
        if service in sessions:
            response = sessions[service].get(
                f"{urls[service]}/api/v1/tasks", params={"limit": 1}, headers={"X-API-Key": key}, timeout=10
            )
            return service, str(response.status_code)
        try:
            stubs[service].ListTasks(pb.ListTasksRequest(page_size=1), metadata=[("x-api-key", key)], timeout=10)
        except grpc.RpcError as error:
            return service, error.code().name
        return service, "OK"

    _wait_for_window_start(60, room=30)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(total)))
    elapsed = time.monotonic() - started
    for channel in channels.values():
        channel.close()

    passed = [r for r in results if r[1] in ("200", "OK")]
    refused = [r for r in results if r[1] in ("429", "RESOURCE_EXHAUSTED")]
    print(
        f"\nrate limit {limit}/m: sent {total} over {targets} in {elapsed:.1f} s:"
        f" {len(passed)} passed, {len(refused)} refused"
    )
    assert len(passed) == limit, results
    assert len(refused) == 20
    assert {service for service, _ in passed} == set(targets)  # every replica answered some


def test_a_write_through_one_replica_is_read_at_its_new_version_through_every_other() -> None:
    (key,) = cluster.api_keys(1)
    headers = {"X-API-Key": key}
    urls = [cluster.web_url(service) for service in cluster.WEB_REPLICAS]
    session = cluster.replica_session()
    channels = [grpc.insecure_channel(cluster.grpc_target(service)) for service in cluster.GRPC_REPLICAS]
    stubs = [pb_grpc.TaskServiceStub(channel) for channel in channels]
    created = session.post(f"{urls[0]}/api/v1/tasks", json={"title": "replicas"}, headers=headers, timeout=10)
    assert created.status_code == 201
    task_id = created.json()["id"]
    stale = []
    rounds = 40
    for round_ in range(rounds):
        writer = urls[round_ % 2]
        written = session.patch(
            f"{writer}/api/v1/tasks/{task_id}", json={"description": str(round_)}, headers=headers, timeout=10
        )
        assert written.status_code == 200, written.text
        version = written.json()["version"]
        # Read at once through the other web replica and both gRPC replicas (each read warms its cache too).
        other = session.get(f"{urls[(round_ + 1) % 2]}/api/v1/tasks/{task_id}", headers=headers, timeout=10)
        seen = [("rest", other.json()["version"])]
        for stub in stubs:
            task = stub.GetTask(pb.GetTaskRequest(id=task_id), metadata=[("x-api-key", key)], timeout=10).task
            seen.append(("grpc", task.version))
        stale += [(round_, via, got, version) for via, got in seen if got != version]
    for channel in channels:
        channel.close()
    print(f"\n{rounds} writes alternating over web1/web2, each read at once on the other web and both gRPC replicas: "
          f"{len(stale)} stale reads")  # fmt: skip
    assert stale == []


def _requests_counted(endpoint: str) -> float:
    return cluster.prometheus_value(f'sum(api_requests_total{{protocol="rest",endpoint="{endpoint}"}})')


def test_prometheus_counts_every_request_once_summed_over_the_replicas() -> None:
    (key,) = cluster.api_keys(1)
    created = requests.post(
        f"{cluster.HTTP_URL}/api/v1/tasks", json={"title": "counted"}, headers={"X-API-Key": key}, timeout=10
    )
    task_id = created.json()["id"]
    sent = 300
    # The endpoint label of GET one task: whatever the replicas call it (read from one real scrape).
    session = requests.Session()
    session.headers["X-API-Key"] = key
    session.get(f"{cluster.HTTP_URL}/api/v1/tasks/{task_id}", timeout=10)
    endpoint = "/api/v1/tasks/{task_id}"  # the route's pattern, as the replicas label it
    assert cluster.wait_for(lambda: _requests_counted(endpoint) > 0, timeout=30)
    time.sleep(_scrape_interval() * 2)  # every replica's earlier requests are in
    before = _requests_counted(endpoint)
    for _ in range(sent):
        assert session.get(f"{cluster.HTTP_URL}/api/v1/tasks/{task_id}", timeout=10).status_code == 200
    waited = cluster.wait_for(lambda: _requests_counted(endpoint) - before >= sent, timeout=30)
    time.sleep(_scrape_interval() * 2)  # and nothing more arrives afterwards
    counted = _requests_counted(endpoint) - before
    per_replica = cluster.prometheus(f'sum by (instance) (api_requests_total{{protocol="rest",endpoint="{endpoint}"}})')
    print(f"\nsent {sent} GETs through the proxy; Prometheus summed {counted:.0f} over "
          f"{len(per_replica)} replicas (in {waited} s)")  # fmt: skip
    assert counted == sent
    assert len(per_replica) == len(cluster.WEB_REPLICAS)


def _scrape_interval() -> float:
    config = requests.get(f"{cluster.PROMETHEUS_URL}/api/v1/status/config", timeout=5).json()["data"]["yaml"]
    for line in config.splitlines():
        if "scrape_interval:" in line:
            value = line.split(":", 1)[1].strip()
            return float(value.rstrip("s")) if value.endswith("s") and not value.endswith("ms") else 1.0
    return 15.0


def test_replicas_keep_copies_of_cached_reads_exactly_when_the_cluster_runs_with_them() -> None:
    """The cluster passes prove something about the copy only if the replicas keep copies as they start
    by default: every web and gRPC replica that has read a task listens to Redis' invalidation messages
    (a connection with broadcast tracking, subscribed: CLIENT LIST's flags t, B and P). Started with
    CACHE_LOCAL_SECONDS=0, none does."""
    (key,) = cluster.api_keys(1)
    created = cluster.replica_session().post(
        f"{cluster.web_url('web1')}/api/v1/tasks", json={"title": "copy"}, headers={"X-API-Key": key}, timeout=10
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    sessions = {service: cluster.replica_session() for service in cluster.WEB_REPLICAS}
    stubs = {
        service: pb_grpc.TaskServiceStub(grpc.insecure_channel(cluster.grpc_target(service)))
        for service in cluster.GRPC_REPLICAS
    }
    addresses = {cluster.address(service): service for service in (*cluster.WEB_REPLICAS, *cluster.GRPC_REPLICAS)}

    def read_everywhere() -> None:
        for service, session in sessions.items():
            for _ in range(4):  # each web replica's processes take turns
                url = f"{cluster.web_url(service)}/api/v1/tasks/{task_id}"
                assert session.get(url, headers={"X-API-Key": key}, timeout=10).status_code == 200
        for stub in stubs.values():
            stub.GetTask(pb.GetTaskRequest(id=task_id), metadata=[("x-api-key", key)], timeout=10)

    def listening() -> set[str]:
        clients = cluster.podman("exec", cluster.container("redis"), "redis-cli", "CLIENT", "LIST").splitlines()
        found = set()
        for line in clients:
            fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
            flags, host = fields.get("flags", ""), fields.get("addr", "").rpartition(":")[0]
            if {"t", "B", "P"} <= set(flags) and host in addresses:
                found.add(addresses[host])
        return found

    read_everywhere()
    if float(os.environ.get("CACHE_LOCAL_SECONDS") or 5) <= 0:
        time.sleep(1)  # a listener starts in the background, within milliseconds of a read
        read_everywhere()
        assert listening() == set()
        return
    waited = cluster.wait_for(lambda: (read_everywhere(), listening())[1] == set(addresses.values()), timeout=30)
    assert waited is not None, listening()
