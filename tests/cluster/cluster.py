"""The compose cluster as the tests see it: its published addresses, its containers, and its database.

Everything goes through the real tools: requests and grpcio to the proxy, `podman` to stop, stall,
kill and restart containers, and `psql` inside the PostgreSQL container to check the client's record
against the database. Nothing here is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ENV_FILE = DOCKER / ".env"
PROJECT = "taskhub"
# What docker/cluster.sh chose at `up` (the images of the dependencies, the published ports).
CLUSTER_ENV = ROOT / "var" / "podman" / "cluster.env"
# podman-compose as requirements/cluster.txt pins it (docker/cluster.sh installs it there).
COMPOSE = ROOT / "var" / "podman" / "compose-venv" / "bin" / "podman-compose"
HTTP_URL = os.environ.get("TASKHUB_CLUSTER_URL", f"http://127.0.0.1:{os.environ.get('TASKHUB_HTTP_PORT', '8080')}")
GRPC_TARGET = os.environ.get("TASKHUB_CLUSTER_GRPC", f"127.0.0.1:{os.environ.get('TASKHUB_GRPC_PORT', '9090')}")
PROMETHEUS_URL = os.environ.get(
    "TASKHUB_CLUSTER_PROMETHEUS", f"http://127.0.0.1:{os.environ.get('TASKHUB_PROMETHEUS_PORT', '9091')}"
)
WEB_REPLICAS = ("web1", "web2")
EVENTS_REPLICAS = ("events1", "events2")
GRPC_REPLICAS = ("grpc1", "grpc2")
WEB_PORT = 8000
GRPC_PORT = 50051


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


def env_file() -> dict[str, str]:
    """The cluster's generated secrets (docker/.env, written by `make cluster-up`)."""
    return read_env_file(ENV_FILE)


def command_env() -> dict[str, str]:
    """The environment for podman and podman-compose commands on the cluster (for a command run in the background)."""
    return {
        **os.environ,
        **read_env_file(CLUSTER_ENV),
        "CONTAINERS_CONF": str(DOCKER / "podman" / "containers.conf"),
    }


def podman(*args: str, check: bool = True, timeout: float = 120) -> str:
    """Run podman with the cluster's containers.conf; its standard output."""
    result = subprocess.run(["podman", *args], env=command_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode:
        raise RuntimeError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


@cache
def container(service: str) -> str:
    """The name of a compose service's container (compose labels, whatever the tool names it)."""
    names = podman(
        "ps", "-a", "--format", "{{.Names}}",
        "--filter", f"label=com.docker.compose.project={PROJECT}",
        "--filter", f"label=com.docker.compose.service={service}",
    ).split()  # fmt: skip
    if not names:  # podman-compose 1.0.3 names a service's only container <project>_<service>_1
        names = podman("ps", "-a", "--format", "{{.Names}}", "--filter", f"name=^{PROJECT}_{service}_1$").split()
    if len(names) != 1:
        raise RuntimeError(f"expected one container of service {service!r} in project {PROJECT!r}, found {names}")
    return names[0]


def address(service: str) -> str:
    """The container's address on the cluster network (reachable from this host, never published)."""
    networks = json.loads(podman("inspect", "--format", "{{json .NetworkSettings.Networks}}", container(service)))
    for network in networks.values():
        if network.get("IPAddress"):
            return str(network["IPAddress"])
    raise RuntimeError(f"{service} has no address: {networks}")


def web_url(service: str) -> str:
    return f"http://{address(service)}:{WEB_PORT}"


def replica_metric(service: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples with these labels in a web or events replica's own /metrics (every
    process of the replica summed by the multiprocess collector)."""
    response = replica_session().get(
        f"{web_url(service)}/metrics", headers={"Authorization": f"Bearer {env_file()['METRICS_TOKEN']}"}, timeout=5
    )
    response.raise_for_status()
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def replica_session() -> requests.Session:
    """A session for one web replica's own address: with a Host its ALLOWED_HOSTS accepts, as the proxy sends."""
    session = requests.Session()
    session.headers["Host"] = "localhost"
    return session


def grpc_target(service: str) -> str:
    return f"{address(service)}:{GRPC_PORT}"


# What a process started by `podman exec` sees for a while after containers of the network were stopped
# or restarted (aardvark-dns reloading: seen after tests/cluster/test_events.py stops both events
# replicas, for more than 10 s); the replica's own server, already connected, is not affected. The
# resolver says it either way: "try again" (EAI_AGAIN), or "no such name" (EAI_NONAME, seen as
# psycopg's "failed to resolve host 'postgres'" in the first fault test after the events tests, before
# the replicas had PostgreSQL and Redis in /etc/hosts; kept for any other name a command may look up).
_NAME_NOT_RESOLVED = ("Temporary failure in name resolution", "Name or service not known")


def manage(*args: str, service: str = "web1") -> str:
    """`manage.py` inside a running replica, with its production settings. A name the network's DNS
    cannot resolve yet is tried again for up to 60 s; any other failure is raised at once."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return podman("exec", container(service), "python", "manage.py", *args, timeout=120)
        except RuntimeError as error:
            if not any(message in str(error) for message in _NAME_NOT_RESOLVED) or time.monotonic() > deadline:
                raise
        time.sleep(1)


_PROVISION = """
import json, uuid
from django.contrib.auth import get_user_model
from core.auth import api_key_create
users = get_user_model()
keys = []
for _ in range({count}):
    user = users.objects.create_user(username="cluster-" + uuid.uuid4().hex[:12], password=None)
    keys.append(api_key_create(user=user, name="cluster tests")[1])
print(json.dumps(keys))
"""


def api_keys(count: int) -> list[str]:
    """`count` new users, each with an API key (API keys: the token endpoint's per-address limit stays out)."""
    output = manage("shell", "-c", _PROVISION.format(count=count))
    return list(json.loads(output.strip().splitlines()[-1]))


def psql(sql: str) -> list[list[str]]:
    """Rows of a query run by `psql` in the PostgreSQL container."""
    env = env_file()
    out = podman(
        "exec", container("postgres"), "psql", "-X", "-A", "-t", "-F", "\t",
        "-U", env.get("POSTGRES_USER", "taskhub"), "-d", env.get("POSTGRES_DB", "taskhub"), "-c", sql,
    )  # fmt: skip
    return [line.split("\t") for line in out.splitlines() if line]


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> float | None:
    """Seconds until `condition()` held, or None if it did not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if condition():
                return time.monotonic() - started
        except (requests.RequestException, RuntimeError):
            pass
        time.sleep(interval)
    return None


def ready(url: str = HTTP_URL) -> bool:
    return requests.get(f"{url}/readyz", headers={"Host": "localhost"}, timeout=2).status_code == 200


def prometheus(query: str) -> list[dict[str, Any]]:
    response = requests.get(f"{PROMETHEUS_URL}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    return list(response.json()["data"]["result"])


def prometheus_value(query: str) -> float:
    result = prometheus(query)
    return float(result[0]["value"][1]) if result else 0.0
