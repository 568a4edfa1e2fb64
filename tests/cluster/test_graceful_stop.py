"""A replica that gets SIGTERM (`podman stop`) finishes the requests it has in flight before it exits:
the image's entry point execs the server, so the server itself gets the signal (docker/entrypoint.sh).

A request is held in flight by pausing PostgreSQL under it; the replica is stopped while it waits; then
PostgreSQL goes on, and the request must complete. The client calls the replica directly (the proxy
would retry elsewhere), from the other replica of the same role, and the replica is started again after.

The client runs in a container that is already on the network (`podman exec`), looks the replica's
address up once, makes the request once to warm the replica's connections, and sends the held request
when the test writes a line to it. A container started or removed on the network makes podman's DNS
server (aardvark-dns) reload, and a lookup made meanwhile can go unanswered for many seconds: the
resolver waits 5 s per try, over two name servers and two address families. The replicas now find
`redis` and `postgres` in /etc/hosts (docs/deploy.md, "The local cluster"), but the client's lookup of
the replica still asks that server. Before the hosts entries, a replica restarted by an earlier test
resolved both names on its first request; when that request was the held one, sent while a `podman run`
client started, it sometimes spent 20 s resolving names and was cut off by the grace period: the test
then measured podman's DNS, not the stop.
"""

from __future__ import annotations

import json
import re
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.cluster.cluster import command_env
from tests.cluster.conftest import Credentials, Runner

HELD = 2.0  # seconds the request waits for the paused database before the stop begins
KILLED_AFTER = 30  # podman stop --time: SIGKILL after this many seconds


def wait_healthy(podman: Runner, container: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while podman("healthcheck", "run", container, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{container} is not healthy after {timeout} s"
        time.sleep(0.5)


@pytest.fixture
def access(base_url: str, demo_credentials: Credentials) -> str:
    response = requests.post(
        f"{base_url}/api/v1/auth/token",
        json={"username": demo_credentials.username, "password": demo_credentials.password},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access"])


@dataclass
class Stopped:
    output: str  # the client's standard output after "ready"
    errors: str  # the client's standard error, and podman's
    seconds: float  # `podman stop`'s own time
    server_seconds: list[float]  # the times the replica logged for its stop (gRPC writes one)
    logs: str  # the end of the replica's log


def logs_of(podman: Runner, container: str) -> str:
    logged = podman("logs", container)
    return logged.stdout + logged.stderr


def stop_times(logs: str) -> list[float]:
    return [float(seconds) for seconds in re.findall(r"gRPC: stopped in ([0-9.]+) s", logs)]


WARM_UP = 120  # seconds the untimed first request may take (a name lookup can wait 20-40 s)

# The client, Python run in a replica's container: `setup` once, then `request(timeout)` once to warm the
# replica's connections (untimed: names may resolve slowly just after a container started), "ready", and
# the held request when the test writes "go". Killing `podman exec` does not end the process in the
# container: the alarm does, and a client whose test went away (its stdin closed) sends nothing.
CLIENT = f"""\
import signal, sys, time
signal.alarm({WARM_UP + 180})
{{setup}}
def request(timeout):
{{request}}
request(timeout={WARM_UP})
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit("the test went away")
started = time.monotonic()
print(request(timeout=30), "after", round(time.monotonic() - started, 2))
"""


def client_command(container: str, setup: str, request: str) -> list[str]:
    """`podman exec` of a client in `container`; `request` is the body of a function of `timeout` that
    makes the request and returns what to print of the answer."""
    body = "\n".join(f"    {line}" for line in request.splitlines())
    return ["podman", "exec", "--interactive", container, "python", "-c", CLIENT.format(setup=setup, request=body)]


def stop_while_in_flight(
    podman: Runner, container_name: Callable[[str], str], service: str, client: list[str]
) -> Stopped:
    """Runs `client` (`client_command`) against `service`; once it is ready, pauses the database, has it
    send its request, stops the service while the request waits, lets the database go on, and returns
    what the client printed and how the stop went."""
    replica, postgres = container_name(service), container_name("postgres")
    wait_healthy(podman, replica)
    caller = subprocess.Popen(
        client,
        env=command_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # podman's warnings and the client's errors, read at the end
        text=True,
    )
    try:
        assert caller.stdin is not None and caller.stdout is not None
        # "ready", or the client's error and then its end; nothing within the warm-up's time is a failure too.
        waited = WARM_UP + 30
        ready = caller.stdout.readline() if select.select([caller.stdout], [], [], waited)[0] else "(nothing)\n"
        if ready.strip() != "ready":
            caller.kill()
            pytest.fail(f"the client did not get ready: {ready}{''.join(caller.communicate(timeout=60))}")
        podman("pause", postgres)
        try:
            caller.stdin.write("go\n")
            caller.stdin.flush()
            time.sleep(HELD)
            stops_before = len(stop_times(logs_of(podman, replica)))
            started = time.monotonic()
            stopper = subprocess.Popen(["podman", "stop", "--time", str(KILLED_AFTER), replica], env=command_env())
            time.sleep(1.0)
        finally:
            podman("unpause", postgres)
        try:
            assert stopper.wait(timeout=60) == 0
            seconds = time.monotonic() - started
            # 0: the server returned on its own; 137 would be podman's SIGKILL at the end of KILLED_AFTER.
            exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", replica).stdout.strip()
            logs = logs_of(podman, replica)
            output, errors = caller.communicate(timeout=60)
        finally:
            podman("start", replica)
            wait_healthy(podman, replica)
    finally:
        if caller.poll() is None:  # a failure above: no client is left behind (its stdin closes: no "go")
            caller.kill()
            caller.communicate(timeout=60)
    assert exit_code == "0", f"{replica} exited {exit_code} after {seconds:.1f} s:\n{logs[-3000:]}"
    # A graceful exit, not the kill. The wall clock includes podman's own part of the stop (conmon, the
    # network), which grows with the machine's load: 18 s was seen once on a loaded CI machine, so the
    # bound is loose, and the server's own time is checked from its log where it writes one (gRPC).
    assert seconds < KILLED_AFTER - 5, f"{replica} took {seconds:.1f} s to stop"
    return Stopped(output, errors, seconds, stop_times(logs)[stops_before:], logs[-3000:])


@pytest.fixture
def restore_postgres(podman: Runner, container_name: Callable[[str], str]) -> Iterator[None]:
    yield
    podman("unpause", container_name("postgres"), check=False)


@pytest.mark.usefixtures("restore_postgres")
def test_web_finishes_the_request_in_flight(
    podman: Runner, container_name: Callable[[str], str], demo_credentials: Credentials
) -> None:
    body = json.dumps({"username": demo_credentials.username, "password": demo_credentials.password})
    setup = (
        "import socket, urllib.request\n"
        "address = socket.gethostbyname('web1')  # once: the held request looks up nothing"
    )
    request = (
        "sent = urllib.request.Request(f'http://{address}:8000/api/v1/auth/token',"
        f" headers={{'Host': 'web1', 'Content-Type': 'application/json'}}, data={body!r}.encode())\n"
        "with urllib.request.urlopen(sent, timeout=timeout) as response:\n"
        "    return f'status {response.status}'"
    )
    client = client_command(container_name("web2"), setup, request)
    stopped = stop_while_in_flight(podman, container_name, "web1", client)
    assert "status 200" in stopped.output, f"client:\n{stopped.output}{stopped.errors}\nreplica:\n{stopped.logs}"
    assert float(stopped.output.split("after")[-1]) >= HELD, stopped.output


@pytest.mark.usefixtures("restore_postgres")
def test_grpc_finishes_the_call_in_flight(podman: Runner, container_name: Callable[[str], str], access: str) -> None:
    setup = (
        "import uuid, grpc\n"
        "from api_grpc.generated.tasks.v1 import tasks_pb2 as pb, tasks_pb2_grpc as pb_grpc\n"
        "tasks = pb_grpc.TaskServiceStub(grpc.insecure_channel('grpc1:50051'))  # one channel, one lookup"
    )
    request = (
        # A search never made before: not in the cache, so the call waits for the database.
        "answer = tasks.ListTasks(pb.ListTasksRequest(page_size=5, search=f'held-{uuid.uuid4().hex}'),"
        f" metadata=(('authorization', 'Bearer {access}'),), timeout=timeout)\n"
        "return f'OK {len(answer.tasks)}'"
    )
    client = client_command(container_name("grpc2"), setup, request)
    stopped = stop_while_in_flight(podman, container_name, "grpc1", client)
    # The replica's log beside the client's output: when the call did not finish, its access line and
    # the stop's time say whether the server waited on the database or cut the call off.
    assert "OK" in stopped.output, f"client:\n{stopped.output}{stopped.errors}\nreplica:\n{stopped.logs}"
    assert float(stopped.output.split("after")[-1]) >= HELD, stopped.output
    # The server's own time, from the signal to the last call's end: the call went on as soon as the
    # database did (a second after the stop began), not at the end of GRPC_SHUTDOWN_GRACE (10 s).
    assert len(stopped.server_seconds) == 1 and stopped.server_seconds[0] < 8, stopped.logs
