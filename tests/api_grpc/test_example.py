"""examples/grpc_events.py, the live-events example of docs/api/grpc.md, works as printed against a real
server (the token comes from TASKHUB_TOKEN instead of a login over HTTP)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings

from api_grpc.server import Running
from tests.conftest import access_token


def test_the_events_example_works_as_printed(grpc_server: Running, user: Any) -> None:
    env = {**os.environ, "TASKHUB_GRPC": f"127.0.0.1:{grpc_server.port}", "TASKHUB_TOKEN": access_token(user)}
    example = Path(settings.BASE_DIR) / "examples" / "grpc_events.py"
    result = subprocess.run([sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "result c1: Watch me",
        "error d0: NOT_FOUND not_found",
        "event: TASK_EVENT_TYPE_CREATED Watch me version 1",
        "event: TASK_EVENT_TYPE_COMPLETED Watch me version 2",
        f"event: TASK_EVENT_TYPE_DELETED {_deleted_id(result.stdout)} version 2",
        "resumed: TASK_EVENT_TYPE_COMPLETED Watch me version 2",
        f"resumed: TASK_EVENT_TYPE_DELETED {_deleted_id(result.stdout)} version 2",
    ]


def _deleted_id(output: str) -> str:
    """The id the example prints for the deleted task (a delete event carries no task, only its id)."""
    line = next(line for line in output.splitlines() if line.startswith("event: TASK_EVENT_TYPE_DELETED "))
    return line.split()[2]
