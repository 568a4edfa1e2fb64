"""Helpers of the tests that start real server processes (granian, gunicorn, grpcserver, ...) against
the database this pytest session created."""

from __future__ import annotations

import os
import random
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection


def executable(variable: str, *names: str) -> str | None:
    """The absolute path of a tool from outside the venv (chromium, promtool, prometheus): the command, a name on PATH
    or a path, that the environment variable `variable` names (as `make test` passes it), else the first of `names`
    on PATH. None when it is missing or does not run."""
    chosen = os.environ.get(variable, "").strip()
    for name in [chosen] if chosen else names:
        path = shutil.which(name)
        if path is not None:
            return os.path.abspath(path)
    return None


def binary(name: str) -> str:
    """The path of a Prometheus tool (`promtool`, `prometheus`), named by the variable `PROMTOOL` or
    `PROMETHEUS` or found on PATH. The test command installs them (`make prometheus`), so a missing
    one is a broken set-up and fails the test rather than skipping it unnoticed."""
    path = executable(name.upper(), name)
    if path is None:
        pytest.fail(
            f"`{name}` is not installed: install Debian's package `prometheus` (`make prometheus`), "
            f"or name it with {name.upper()}=/path/to/{name}."
        )
    return path


def _ephemeral_ports() -> range:
    """The kernel's range for the local ports of outgoing connections (Linux's `ip_local_port_range`)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def _candidate_ports() -> Iterator[int]:
    """Ports below the ephemeral range, from a random start (another test run beside this one starts
    elsewhere), each once; then whatever the kernel hands out."""
    ephemeral = _ephemeral_ports().start
    ports = list(range(max(1024, ephemeral // 2), ephemeral))
    if ports:
        start = random.randrange(len(ports))
        yield from ports[start:] + ports[:start]
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            yield int(sock.getsockname()[1])


_candidates = _candidate_ports()


def free_port(candidates: Iterator[int] = _candidates) -> int:
    """A port nothing listens on now, for a server a test starts (possibly seconds later).

    Not one the kernel picks for `bind(0)`: that is in the range it also gives the local end of every
    outgoing connection, so a connection the test's other servers open meanwhile (to PostgreSQL, Redis, a
    collector) can take it before the server binds it, and the server fails with "Address already in use".
    Ports below that range are never taken that way, and no port is handed out twice in one test run.
    `candidates` is for the harness's own test.
    """
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # listened on, or still in TIME_WAIT from an earlier run
                continue
            return port
    raise RuntimeError("no free port among the candidates")


def postgres_url(name: str, host: str | None = None, port: int | None = None) -> str:
    """A URL of the PostgreSQL server of the session (its user and password), for database `name`."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{host or db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}/{name}"


def test_database_url() -> str:
    """The URL of the test database this session created (Django's `test_<name>` or DATABASE_TEST_NAME)."""
    if connection.vendor == "sqlite":
        return f"sqlite:///{connection.settings_dict['NAME']}"
    return postgres_url(connection.settings_dict["NAME"])


test_database_url.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name
