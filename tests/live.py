"""Helpers of the tests that start real server processes (granian, gunicorn, grpcserver, ...) against
the database this pytest session created."""

from __future__ import annotations

import os
import shutil
import socket
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


def free_port() -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
