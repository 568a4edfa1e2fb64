"""The README's curl walkthrough, the gRPC client example and the live-events `curl -N` of docs/api/rest.md
work as printed, against the server `make run` starts (its `manage.py serve` line, run as printed)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.live import free_port

README = Path(settings.BASE_DIR) / "README.md"


def _walkthrough() -> str:
    text = README.read_text()
    section = text.split("## A walk through the API with curl", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def _run_command(port: int, grpc_port: int) -> list[str]:
    """The serving line of the Makefile's `run` target, with these ports and without the reloader."""
    recipe = (Path(settings.BASE_DIR) / "Makefile").read_text().split("\nrun: ", 1)[1].split("\n\n", 1)[0]
    line = next(line for line in recipe.splitlines() if "manage.py serve" in line)
    words = line.strip().split()
    assert words[0] == "DJANGO_DEBUG=1" and words[1] == "$(BIN)/python", line
    variables = {"$(HOST)": "127.0.0.1", "$(PORT)": str(port), "$(GRPC_PORT)": str(grpc_port)}
    return [sys.executable, *(variables.get(word, word) for word in words[2:]), "--noreload"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("readme")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "RATE_LIMITS_ENABLED": "true",
    }
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--no-input"], ["seed_demo"]):
        subprocess.run(manage + command, env=env, cwd=settings.BASE_DIR, check=True, capture_output=True, timeout=120)
    grpc_port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            _run_command(port, grpc_port), env=env, cwd=settings.BASE_DIR, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        for listening in (port, grpc_port):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                try:
                    socket.create_connection(("127.0.0.1", listening), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
        yield port, grpc_port
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C stops both servers
        assert process.wait(timeout=30) == 0, log.read_text()


def test_curl_walkthrough_works_as_printed(server: tuple[int, int]) -> None:
    script = _walkthrough().replace("http://127.0.0.1:8000", f"http://127.0.0.1:{server[0]}")
    result = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"title":"Try taskhub"' in out and '"tags":["demo"]' in out
    assert '"status":"in_progress"' in out and '"version":2' in out
    assert "HTTP/1.1 412 Precondition Failed" in out and '"code":"stale_version"' in out
    assert "HTTP/1.1 204 No Content" in out
    assert '"code":"not_found"' in out.splitlines()[-1]  # the final GET of the deleted task


def test_grpc_client_example_works_as_printed(server: tuple[int, int]) -> None:
    env = {**os.environ, "TASKHUB_HTTP": f"http://127.0.0.1:{server[0]}", "TASKHUB_GRPC": f"127.0.0.1:{server[1]}"}
    example = Path(settings.BASE_DIR) / "examples" / "grpc_client.py"
    result = subprocess.run([sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("listed: ") and "(PRIORITY_HIGH)" in lines[0]
    assert any(line.startswith("created: ") and line.endswith("version 1") for line in lines)
    assert "updated: STATUS_COMPLETED, completed=True, version 2" in lines
    assert any(line.startswith("stale update: ABORTED") for line in lines)
    assert lines[-1] == "deleted"


def _demo_token(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/auth/token",
        data=json.dumps({"username": "demo", "password": "demo-password"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["access"])


def _events_until(lines: Iterator[str], count: int) -> list[tuple[str, dict]]:
    """The next `count` events (type, data) of a stream given line by line, past comments and `retry:`."""
    events: list[tuple[str, dict]] = []
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ").strip()
        elif line.startswith("data: ") and kind is not None:
            events.append((kind, json.loads(line.removeprefix("data: "))))
            if len(events) == count:
                return events
    raise AssertionError(f"the stream ended after {events}")


def test_run_serves_live_events_on_its_http_port_with_grpc_writes(server: tuple[int, int]) -> None:
    """One origin and one process: a stream on the HTTP port sees the writes of the gRPC example."""
    port = server[0]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/api/v1/tasks/events", headers={"Authorization": f"Bearer {_demo_token(port)}"})
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    assert response.readline() == b"retry: 5000\n"
    try:
        test_grpc_client_example_works_as_printed(server)
        events = _events_until((line.decode() for line in iter(response.readline, b"")), 3)
    finally:
        connection.close()
    assert [kind for kind, _ in events] == ["created", "completed", "deleted"]
    assert events[0][1]["task"]["title"] == "Try gRPC"
    assert {data["task_id"] for _, data in events} == {events[0][1]["task_id"]}


def _events_example(document: Path, heading: str) -> str:
    section = document.read_text().split(heading, 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize(
    ("document", "heading"),
    [(README, "### Live events"), (Path(settings.BASE_DIR) / "docs" / "api" / "rest.md", "## Live events")],
    ids=["README", "rest.md"],
)
def test_the_curl_n_of_live_events_works_as_printed(server: tuple[int, int], document: Path, heading: str) -> None:
    port = server[0]
    script = _events_example(document, heading).replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    assert "curl -N" in script
    curl = subprocess.Popen(["bash", "-e", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert curl.stdout is not None
        assert curl.stdout.readline() == "retry: 5000\n"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/tasks",
            data=json.dumps({"title": "Watch me", "priority": "high"}).encode(),
            headers={"Authorization": f"Bearer {_demo_token(port)}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as created:
            task = json.load(created)
        [(kind, data)] = _events_until(iter(curl.stdout.readline, ""), 1)
    finally:
        os.killpg(curl.pid, signal.SIGTERM)
        curl.wait(timeout=10)
    assert kind == "created" and data["task"] == task
