"""The README's curl walkthrough and the gRPC client example work as printed, against real servers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.live import free_port

README = Path(settings.BASE_DIR) / "README.md"


def _walkthrough() -> str:
    text = README.read_text()
    section = text.split("## A walk through the API with curl", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


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
    processes = [
        subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in (
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            [*manage, "grpcserver", "--port", str(grpc_port)],
        )
    ]
    try:
        for listening in (port, grpc_port):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", listening), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
        yield port, grpc_port
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


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
