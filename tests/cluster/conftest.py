"""Fixtures of the cluster tests: the local cluster of docker/compose.yaml, up (`make cluster-up`).

`make cluster-test` runs these tests with the cluster's addresses in the environment; the default
`pytest` run does not collect this directory (`norecursedirs` in pyproject.toml).

- TASKHUB_CLUSTER_URL         the proxy's HTTP base URL (http://127.0.0.1:8080)
- TASKHUB_CLUSTER_GRPC        the proxy's gRPC address (127.0.0.1:9090)
- TASKHUB_CLUSTER_PROMETHEUS  Prometheus (http://127.0.0.1:9091)

The secrets (metrics token, demo credentials) are read from docker/.env, which `make cluster-up` wrote.
`compose(...)` and `podman(...)` run those commands on the cluster, as docker/cluster.sh does. Give
`compose("up", ...)` the `--no-deps` that docker/cluster.sh uses, or podman links the new container to the
ones it depends on (`--requires`) and a later `podman start` of it starts, or fails on, those too.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.cluster import cluster
from tests.cluster.cluster import COMPOSE, DOCKER, PROJECT, command_env, read_env_file


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@pytest.fixture(scope="session")
def cluster_secrets() -> dict[str, str]:
    """docker/.env: the keys, METRICS_TOKEN, POSTGRES_PASSWORD, DEMO_USERNAME and DEMO_PASSWORD."""
    values = read_env_file(DOCKER / ".env")
    if not values:
        pytest.fail("docker/.env is missing: bring the cluster up first (make cluster-up)")
    return values


@pytest.fixture(scope="session")
def base_url() -> str:
    """The proxy's HTTP base URL, without a trailing slash."""
    return os.environ.get("TASKHUB_CLUSTER_URL", "http://127.0.0.1:8080").rstrip("/")


@pytest.fixture(scope="session")
def grpc_target() -> str:
    """The proxy's gRPC address, host:port."""
    return os.environ.get("TASKHUB_CLUSTER_GRPC", "127.0.0.1:9090")


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    return os.environ.get("TASKHUB_CLUSTER_PROMETHEUS", "http://127.0.0.1:9091").rstrip("/")


@pytest.fixture(scope="session")
def metrics_token(cluster_secrets: dict[str, str]) -> str:
    return cluster_secrets["METRICS_TOKEN"]


@pytest.fixture(scope="session")
def demo_credentials(cluster_secrets: dict[str, str]) -> Credentials:
    """The demo user `make cluster-up` seeded (seed_demo) with its random password."""
    return Credentials(cluster_secrets.get("DEMO_USERNAME", "demo"), cluster_secrets["DEMO_PASSWORD"])


def _run(command: list[str], check: bool, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=command_env(), capture_output=True, text=True, check=check, timeout=timeout)


Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def podman() -> Runner:
    """`podman(*args, check=True, timeout=120)`: runs podman with the cluster's containers.conf; output captured."""

    def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _run(["podman", *args], check, timeout)

    return run


@pytest.fixture(scope="session")
def compose() -> Runner:
    """`compose(*args, check=True, timeout=180)`: podman-compose on docker/compose.yaml, project taskhub, with the
    images and ports `make cluster-up` chose (var/podman/cluster.env) and the secrets of docker/.env."""

    def run(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        command = [str(COMPOSE), "--project-name", PROJECT, "--file", str(DOCKER / "compose.yaml"), *args]
        return _run(command, check, timeout)

    return run


NETWORK = f"{PROJECT}_default"


@pytest.fixture(scope="session")
def container_name() -> Callable[[str], str]:
    """The container of a service: `container_name("web1")` is `taskhub_web1_1` (podman-compose 1.0.3)."""
    return cluster.container
