"""The cluster answers through its proxy on every protocol, Prometheus scrapes every replica, and every
replica's image health check passes (make cluster-up, then make cluster-test)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from tests.cluster import cluster
from tests.cluster.conftest import Credentials, Runner

TIMEOUT = 10
REPLICAS = ("web1", "web2", "events1", "events2", "grpc1", "grpc2")


@pytest.fixture(scope="module")
def access(base_url: str, demo_credentials: Credentials) -> str:
    response = requests.post(
        f"{base_url}/api/v1/auth/token",
        json={"username": demo_credentials.username, "password": demo_credentials.password},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access"])


def test_ready_through_the_proxy(base_url: str) -> None:
    response = requests.get(f"{base_url}/readyz", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


def test_a_task_over_rest_grpc_and_graphql(base_url: str, grpc_target: str, access: str) -> None:
    headers = {"Authorization": f"Bearer {access}"}
    title = f"cluster smoke {uuid.uuid4().hex[:8]}"
    created = requests.post(
        f"{base_url}/api/v1/tasks",
        json={"title": title, "priority": "high", "tags": ["cluster"]},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]

    read = requests.get(f"{base_url}/api/v1/tasks/{task_id}", headers=headers, timeout=TIMEOUT)
    assert read.status_code == 200, read.text
    assert read.json()["title"] == title

    with grpc.insecure_channel(grpc_target) as channel:
        answer = pb_grpc.TaskServiceStub(channel).GetTask(
            pb.GetTaskRequest(id=task_id), metadata=(("authorization", f"Bearer {access}"),), timeout=TIMEOUT
        )
    assert answer.task.title == title
    assert answer.task.priority == pb.PRIORITY_HIGH

    query = "query One($id: ID!) { task(id: $id) { title version } }"
    graphql = requests.post(
        f"{base_url}/graphql/",
        json={"query": query, "variables": {"id": task_id}, "operationName": "One"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert graphql.status_code == 200, graphql.text
    assert graphql.json() == {"data": {"task": {"title": title, "version": 1}}}


def test_grpc_health_through_the_proxy(grpc_target: str) -> None:
    with grpc.insecure_channel(grpc_target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("token", [None, "wrong", "metrics"])
def test_metrics_are_not_served_by_the_proxy(base_url: str, metrics_token: str, token: str | None) -> None:
    """docs/operations.md, "Exposure": /metrics stays off the public side, even with the right token;
    Prometheus scrapes each replica on the cluster network."""
    headers = {} if token is None else {"Authorization": f"Bearer {metrics_token if token == 'metrics' else token}"}
    response = requests.get(f"{base_url}/metrics", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 404
    assert "api_requests_total" not in response.text


def test_health_details_only_with_the_token(base_url: str, metrics_token: str) -> None:
    public = requests.get(f"{base_url}/health", timeout=TIMEOUT).json()
    assert set(public) == {"status"}
    detailed = requests.get(
        f"{base_url}/health", headers={"Authorization": f"Bearer {metrics_token}"}, timeout=TIMEOUT
    ).json()
    assert detailed["components"]["database"]["vendor"] == "postgresql"
    assert detailed["components"]["cache"]["backend"] == "redis"


def test_a_forged_forwarded_for_does_not_change_the_client(base_url: str) -> None:
    """nginx replaces X-Forwarded-For with the address it sees and the replicas trust one proxy: anonymous
    requests claiming different addresses are counted as one client by the rate limit."""
    remaining = []
    for forged in ("203.0.113.7", "198.51.100.9, 203.0.113.8"):
        response = requests.get(f"{base_url}/api/v1/tasks", headers={"X-Forwarded-For": forged}, timeout=TIMEOUT)
        assert response.status_code == 401, response.text
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining[1] < remaining[0], remaining


def _up_targets(prometheus_url: str) -> dict[str, float]:
    response = requests.get(f"{prometheus_url}/api/v1/query", params={"query": "up"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return {
        f"{sample['metric']['job']}/{sample['metric']['instance']}": float(sample["value"][1])
        for sample in response.json()["data"]["result"]
    }


def test_prometheus_scrapes_every_replica(prometheus_url: str) -> None:
    expected = {
        "taskhub-web/web1:8000",
        "taskhub-web/web2:8000",
        "taskhub-events/events1:8000",
        "taskhub-events/events2:8000",
        "taskhub-grpc/grpc1:9464",
        "taskhub-grpc/grpc2:9464",
    }
    deadline = time.monotonic() + 30
    targets: dict[str, float] = {}
    while time.monotonic() < deadline:
        targets = _up_targets(prometheus_url)
        if all(targets.get(target) == 1.0 for target in expected):
            break
        time.sleep(1)
    assert {target: targets.get(target) for target in expected} == dict.fromkeys(expected, 1.0), targets


def test_prometheus_has_the_application_metrics(prometheus_url: str, base_url: str) -> None:
    """The web and events scrapes pass the token (an unauthenticated scrape would be `up` but 401, so `up == 0`):
    the request counters of every role's replicas are there."""
    deadline = time.monotonic() + 30
    jobs: set[str] = set()
    while time.monotonic() < deadline:
        response = requests.get(
            f"{prometheus_url}/api/v1/query", params={"query": "count by (job) (api_requests_total)"}, timeout=TIMEOUT
        )
        jobs = {sample["metric"]["job"] for sample in response.json()["data"]["result"]}
        if {"taskhub-web", "taskhub-events", "taskhub-grpc"} <= jobs:
            break
        time.sleep(1)
    assert {"taskhub-web", "taskhub-events", "taskhub-grpc"} <= jobs


@pytest.mark.parametrize("service", REPLICAS)
def test_image_health_check_passes(podman: Runner, container_name: Callable[[str], str], service: str) -> None:
    result = podman("healthcheck", "run", container_name(service), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_replicas_run_the_image_as_a_non_root_user(podman: Runner, container_name: Callable[[str], str]) -> None:
    for service in REPLICAS:
        result = podman("exec", container_name(service), "id", "-u")
        assert result.stdout.strip() == "10001"


def test_image_labels_and_size(podman: Runner, container_name: Callable[[str], str]) -> None:
    image = podman("inspect", "--format", "{{.Image}}", container_name("web1")).stdout.strip()
    info: list[dict[str, Any]] = json.loads(podman("image", "inspect", image).stdout)
    labels = info[0]["Labels"]
    assert labels["org.opencontainers.image.version"]
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    print(f"\ntaskhub image {image[:12]}: {info[0]['Size'] / 1e6:.0f} MB")


def test_the_replicas_find_postgresql_and_redis_without_the_network_dns(
    podman: Runner, container_name: Callable[[str], str]
) -> None:
    """/etc/hosts names them at their current addresses: podman's DNS server drops queries while it reloads
    (docs/deploy.md, "The local cluster": name lookups), and a replica's new connection would wait on it."""
    addresses = {name: cluster.address(name) for name in ("postgres", "redis")}
    for service in REPLICAS:
        found = podman("exec", container_name(service), "getent", "-s", "files", "hosts", *addresses).stdout.split()
        assert dict(zip(found[1::2], found[0::2], strict=True)) == addresses, service
