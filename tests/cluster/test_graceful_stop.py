"""A replica that gets SIGTERM (`podman stop`) finishes the requests it has in flight before it exits:
the image's entry point execs the server, so the server itself gets the signal (docker/entrypoint.sh).

A request is held in flight by pausing PostgreSQL under it; the replica is stopped while it waits; then
PostgreSQL goes on, and the request must complete. The client runs in a container on the cluster network
and calls the replica directly (the proxy would retry elsewhere). The replica is started again after.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.cluster.cluster import command_env
from tests.cluster.conftest import NETWORK, Credentials, Runner

HELD = 2.0  # seconds the request waits for the paused database before the stop begins


def wait_healthy(podman: Runner, container: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while podman("healthcheck", "run", container, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{container} is not healthy after {timeout} s"
        time.sleep(0.5)


@pytest.fixture
def image(podman: Runner, container_name: Callable[[str], str]) -> str:
    return podman("inspect", "--format", "{{.Image}}", container_name("web1")).stdout.strip()


@pytest.fixture
def access(base_url: str, demo_credentials: Credentials) -> str:
    response = requests.post(
        f"{base_url}/api/v1/auth/token",
        json={"username": demo_credentials.username, "password": demo_credentials.password},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access"])


def stop_while_in_flight(podman: Runner, container_name: Callable[[str], str], service: str, client: list[str]) -> str:
    """Runs `client` (a podman run) against `service` with the database paused, stops the service while the
    client waits, lets the database go on, and returns the client's output."""
    replica, postgres = container_name(service), container_name("postgres")
    wait_healthy(podman, replica)
    podman("pause", postgres)
    try:
        caller = subprocess.Popen(
            client, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        time.sleep(HELD)
        started = time.monotonic()
        stopper = subprocess.Popen(["podman", "stop", "--time", "30", replica], env=command_env())
        time.sleep(1.0)
    finally:
        podman("unpause", postgres)
    try:
        # The stop's own time: the client container may take longer to exit on a loaded machine.
        assert stopper.wait(timeout=60) == 0
        stopped_in = time.monotonic() - started
        output, _ = caller.communicate(timeout=60)
    finally:
        podman("start", replica)
        wait_healthy(podman, replica)
    # A graceful exit, not the kill at the end of the 30 s.
    assert stopped_in < 15, f"{replica} took {stopped_in:.1f} s to stop"
    return output


@pytest.fixture
def restore_postgres(podman: Runner, container_name: Callable[[str], str]) -> Iterator[None]:
    yield
    podman("unpause", container_name("postgres"), check=False)


@pytest.mark.usefixtures("restore_postgres")
def test_web_finishes_the_request_in_flight(
    podman: Runner, container_name: Callable[[str], str], image: str, demo_credentials: Credentials
) -> None:
    script = (
        "import json, time, urllib.request\n"
        "started = time.monotonic()\n"
        "request = urllib.request.Request('http://web1:8000/api/v1/auth/token', headers={'Host': 'web1',"
        " 'Content-Type': 'application/json'},"
        f" data=json.dumps({{'username': {demo_credentials.username!r}, 'password': {demo_credentials.password!r}}})"
        ".encode())\n"
        "with urllib.request.urlopen(request, timeout=30) as response:\n"
        "    print('status', response.status, 'after', round(time.monotonic() - started, 2))\n"
    )
    client = ["podman", "run", "--rm", "--network", NETWORK, image, "python", "-c", script]
    output = stop_while_in_flight(podman, container_name, "web1", client)
    assert "status 200" in output, output
    assert float(output.split("after")[-1]) >= HELD, output


@pytest.mark.usefixtures("restore_postgres")
def test_grpc_finishes_the_call_in_flight(
    podman: Runner, container_name: Callable[[str], str], image: str, access: str
) -> None:
    script = (
        "import time, grpc\n"
        "from api_grpc.generated.tasks.v1 import tasks_pb2 as pb, tasks_pb2_grpc as pb_grpc\n"
        "started = time.monotonic()\n"
        "with grpc.insecure_channel('grpc1:50051') as channel:\n"
        "    answer = pb_grpc.TaskServiceStub(channel).ListTasks(pb.ListTasksRequest(page_size=5,"
        # A search never made before: not in the cache, so the call waits for the database.
        f" search='held-{uuid.uuid4().hex}'),"
        f" metadata=(('authorization', 'Bearer {access}'),), timeout=30)\n"
        "print('OK', len(answer.tasks), 'after', round(time.monotonic() - started, 2))\n"
    )
    client = ["podman", "run", "--rm", "--network", NETWORK, image, "python", "-c", script]
    output = stop_while_in_flight(podman, container_name, "grpc1", client)
    assert "OK" in output, output
    assert float(output.split("after")[-1]) >= HELD, output
