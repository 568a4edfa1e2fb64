"""docs/security.md tells the truth: every test it names exists, and the rules it states that no
other test covers hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECURITY = ROOT / "docs" / "security.md"
PACKAGES = ("config", "tasks", "core", "observability", "api_rest", "api_graphql", "api_grpc")
_TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
# What could send a request somewhere a client names: HTTP clients, raw sockets, mail and FTP.
OUTBOUND_MODULES = frozenset(
    {"socket", "ssl", "urllib.request", "http.client", "smtplib", "ftplib", "requests", "httpx", "urllib3", "aiohttp"}
)


def test_the_page_has_every_risk_of_the_owasp_api_top_10() -> None:
    text = SECURITY.read_text()
    for number in range(1, 11):
        assert re.search(rf"^\| \*\*API{number} ", text, re.MULTILINE), f"API{number} is missing"


def _references() -> list[tuple[str, str]]:
    return _TEST_REFERENCE.findall(SECURITY.read_text())


@pytest.mark.parametrize(("path", "name"), _references(), ids=lambda value: str(value))
def test_every_named_test_exists(path: str, name: str) -> None:
    source = (ROOT / path).read_text()
    assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), f"{path} has no test {name}"


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def _outbound(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == o or m.startswith(f"{o}.") for o in OUTBOUND_MODULES)}


# The one use of an outbound module that opens nothing: core.db.shut_down_socket shuts down the socket
# of a database connection that stalled (a duplicate of its descriptor), for the readiness check and
# the watchdog of waits for an answer.
NOT_OUTBOUND = {"core/db.py": ["socket"]}


def test_the_service_makes_no_outbound_requests() -> None:
    """Server-side request forgery needs code that sends a request; the service has none of its own
    (its database, cache and telemetry libraries talk only to the addresses settings give them)."""
    found = {
        str(path.relative_to(ROOT)): sorted(_outbound(_imported_modules(path)))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: modules for path, modules in found.items() if modules} == NOT_OUTBOUND


def test_the_outbound_check_sees_an_http_client(tmp_path: Path) -> None:
    module = tmp_path / "fetch.py"
    module.write_text("from urllib.request import urlopen\nimport socket as s\nfrom http import client\n")
    assert _outbound(_imported_modules(module)) == {"urllib.request", "urllib.request.urlopen", "socket", "http.client"}
