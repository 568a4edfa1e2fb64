"""examples/graphql_subscription.py, the example of docs/api/graphql.md, works as printed against a
real server: the ASGI application under uvicorn, the demo user's login, its events, and a resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

EXAMPLE = Path(settings.BASE_DIR) / "examples" / "graphql_subscription.py"

pytestmark = pytest.mark.django_db(transaction=True)


def run(asgi_server: str, *args: str) -> list[Any]:
    env = {**os.environ, "TASKHUB_HTTP": asgi_server}
    result = subprocess.run([sys.executable, str(EXAMPLE), *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ack, *events = result.stdout.splitlines()
    assert ack == "{'type': 'connection_ack'}"
    return [json.loads(line) for line in events]


def test_the_subscription_example_works_as_printed(asgi_server: str) -> None:
    get_user_model().objects.create_user("demo", password="demo-password")

    events = run(asgi_server)

    assert [(event["type"], event["version"]) for event in events] == [("CREATED", 1), ("COMPLETED", 2), ("DELETED", 2)]
    assert events[0]["task"] == {"title": "Watch me", "status": "TODO"}
    assert events[2]["task"] is None

    resumed = run(asgi_server, events[0]["id"])

    assert resumed[:2] == events[1:]  # the events after the id come first, then the new task's three
    assert [event["type"] for event in resumed[2:]] == ["CREATED", "COMPLETED", "DELETED"]
