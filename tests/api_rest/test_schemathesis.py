"""Schemathesis against the production server (granian, production settings, this run's database):
every phase (examples, coverage, fuzzing, stateful) and every check of the committed OpenAPI document
(docs/api/openapi.yaml), then the GraphQL endpoint against the committed SDL. Any 5xx, any answer the
schema does not describe (status, headers, body, content type), schema-valid input refused or
schema-invalid input accepted fails the test.

Bounded for CI: a fixed seed, a few examples per operation, one worker. The settings that tell the
"valid data is accepted" check which refusals are the domain's (an opaque cursor, a stale `If-Match`,
a reused idempotency key) are in tests/api_rest/schemathesis.toml, each with its reason.

Excluded, and why: NUL characters in generated values (`--generation-allow-x00 false`). A NUL in a
body string is 400 and the schema says so (tests/api_rest/test_strict_input.py); a NUL in a query
parameter belongs to the rework of the list filters (with impossible dates, offsets beyond ±15:59 and
repeated or empty parameters), which tests it there. GraphQL: resolver refusals of the error table
(NOT_FOUND, FORBIDDEN, ...) do not count as server errors (tests/api_rest/schemathesis_hooks.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from core.auth import api_key_create
from core.types import Role
from tests.factories import UserFactory
from tests.live import test_database_url
from tests.observability.test_health import Process, server_environment, start_http  # noqa: F401 (fixture)

BASE_DIR = Path(settings.BASE_DIR)
ST = str(Path(sys.executable).parent / "st")
OPENAPI = BASE_DIR / "docs" / "api" / "openapi.yaml"
SDL = BASE_DIR / "api_graphql" / "schema.graphql"
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = "20261203"
MAX_EXAMPLES = "10"
# Generous limits: the run sends a few thousand requests, and 429 would hide the answers under test
# (the headers are still sent and checked).
UNTHROTTLED = {f"RATE_LIMIT_{scope}": "100000/m,1000000/h" for scope in ("ANON", "USER", "TOKEN")}


def _run(command: list[str], key: str, timeout: float) -> tuple[int, str, float]:
    env = {**os.environ, "TASKHUB_API_KEY": key, "NO_COLOR": "1"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.fixture
def server_and_key(transactional_db: None, start_http: Callable[..., Process]) -> tuple[Process, str]:  # noqa: F811 (the imported fixture)
    """granian on this run's database, and the API key of a manager (managers may read cache/stats)."""
    user = UserFactory(role=Role.MANAGER)
    _, raw = api_key_create(user=user, name="schemathesis")
    server = start_http(server_environment(test_database_url(), settings.REDIS_URL, **UNTHROTTLED))
    return server, raw


def test_the_rest_api_does_what_its_openapi_document_says(server_and_key: tuple[Process, str]) -> None:
    server, key = server_and_key
    command = [
        ST, "--config-file", str(CONFIG), "run", str(OPENAPI),
        "--url", f"http://127.0.0.1:{server.port}",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--checks", "all",
        "--seed", SEED,
        "--max-examples", MAX_EXAMPLES,
        "--workers", "1",
        "--generation-allow-x00", "false",
        "--no-color",
    ]  # fmt: skip

    status, output, seconds = _run(command, key, timeout=600)

    assert status == 0, (
        f"schemathesis failed after {seconds:.0f} s:\n{output[-12000:]}\n--- server:\n{server.log()[-3000:]}"
    )
    assert "Tested: 11" in output, output[-3000:]  # every operation, none skipped for want of credentials
    assert "Stateful" in output and "API Links" in output, output[-3000:]


def test_the_graphql_api_never_fails_internally(server_and_key: tuple[Process, str]) -> None:
    server, key = server_and_key
    command = [
        ST, "--config-file", str(CONFIG), "run", str(SDL),
        "--url", f"http://127.0.0.1:{server.port}/graphql/",
        "--header", f"X-API-Key: {key}",
        "--checks", "not_a_server_error",
        "--seed", SEED,
        "--max-examples", MAX_EXAMPLES,
        "--workers", "1",
        "--generation-allow-x00", "false",
        "--no-color",
    ]  # fmt: skip

    # The hooks of schemathesis.toml keep resolver refusals of the error table from counting as server errors.
    status, output, seconds = _run(command, key, timeout=600)

    assert status == 0, (
        f"schemathesis failed after {seconds:.0f} s:\n{output[-12000:]}\n--- server:\n{server.log()[-3000:]}"
    )
    assert "INTERNAL_SERVER_ERROR" not in output
