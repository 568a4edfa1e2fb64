"""The GraphQL-over-HTTP conformance audit of graphql-http (docs/api/graphql.md, "Requests"), run by
Node.js against the production server (granian, production settings) as a real process.

graphql-http is pinned in tools/package.json and installed with buf (`make install-dev`, which runs
`npm ci --prefix tools`). A missing Node.js or graphql-http is a broken set-up: the test fails and
says what to install, never skips unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.live import executable, test_database_url
from tests.observability.test_health import Process, server_environment, start_http  # noqa: F401  (a fixture)

TOOLS = Path(settings.BASE_DIR) / "tools" / "node_modules"
SCRIPT = Path(__file__).with_name("graphql_http_audit.cjs")

pytestmark = pytest.mark.django_db(transaction=True)


def node() -> str:
    path = executable("NODE", "node")
    if path is None:
        pytest.fail("Node.js is not installed (Debian's package nodejs), or the command NODE names does not run.")
    if not (TOOLS / "graphql-http" / "package.json").is_file():
        pytest.fail("graphql-http is not installed: `make install-dev` (or `npm ci --prefix tools`) installs it.")
    return path


def audit(server: Process) -> list[dict[str, Any]]:
    completed = subprocess.run(
        [node(), str(SCRIPT), f"http://127.0.0.1:{server.port}/graphql/"],
        env={**os.environ, "NODE_PATH": str(TOOLS)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines()]


# The audits that query `__type(name: $name)` to test variables: with introspection off (production's
# default, docs/api/graphql.md, "Introspection, suggestions and GraphiQL") the document is refused
# before it runs, which is the setting working, not the protocol.
NEEDS_INTROSPECTION = {"28B9", "2EA1"}


def run_audit(start: Callable[..., Process], **variables: str) -> list[dict[str, Any]]:
    # The audit sends about sixty anonymous requests in a row; the anonymous rate limit would answer
    # 429 to the later ones, which is the limit working, not the protocol.
    server = start(server_environment(test_database_url(), RATE_LIMIT_ANON="10000/m,100000/h", **variables))
    results = audit(server)
    assert len(results) > 50, results  # the whole suite ran
    return results


def not_ok(results: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(result) for result in results if result["status"] != "ok")


def test_the_production_server_passes_the_graphql_over_http_audit(start_http: Callable[..., Process]) -> None:  # noqa: F811
    results = run_audit(start_http, GRAPHQL_INTROSPECTION_ENABLED="true")

    assert [result for result in results if result["status"] in {"error", "warn"}] == [], not_ok(results)


def test_with_introspection_off_only_the_audits_that_need_it_fail(start_http: Callable[..., Process]) -> None:  # noqa: F811
    results = run_audit(start_http)

    failed = {result["id"]: result for result in results if result["status"] in {"error", "warn"}}
    assert set(failed) == NEEDS_INTROSPECTION, not_ok(results)
    for result in failed.values():
        assert "introspection has been disabled" in result["response"]["body"], result
