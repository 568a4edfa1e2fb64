"""Production settings refuse to start without their secrets, or with a number out of its range."""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env import integer, seconds

SCRIPT = "import django; django.setup(); print('started')"


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JWT_"))}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings.production")
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=clean, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "missing"),
    [({}, "DJANGO_SECRET_KEY"), ({"DJANGO_SECRET_KEY": "s" * 60}, "JWT_SIGNING_KEY")],
)
def test_production_refuses_to_start_without_secrets(env: dict[str, str], missing: str) -> None:
    result = _start(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


def test_production_starts_with_secrets_and_debug_off() -> None:
    result = _start(DJANGO_SECRET_KEY="s" * 60, JWT_SIGNING_KEY="j" * 60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REDIS_SOCKET_TIMEOUT", "0", "REDIS_SOCKET_TIMEOUT must be a number of seconds greater than 0 and"),
        ("REDIS_SOCKET_TIMEOUT", "nan", "at most 86400, not 'nan'."),
        ("DATABASE_RETRY_WINDOW", "inf", "DATABASE_RETRY_WINDOW must be a number of seconds of at least 0 and"),
        ("CACHE_TTL", "-5", "CACHE_TTL must be an integer of at least 1, not '-5'."),
        ("GRPC_PORT", "70000", "GRPC_PORT must be an integer from 1 to 65535, not '70000'."),
        ("EVENTS_BUFFER", "256k", "EVENTS_BUFFER must be an integer of at least 1, not '256k'."),
        ("REDIS_SOCKET_TIMEOUT", "250ms", "REDIS_SOCKET_TIMEOUT must be a number of seconds greater than 0 and"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "3000000000", "from 0 to 2147483647, not '3000000000'."),
        ("GRPC_MAX_SEND_MESSAGE_BYTES", "1024", "GRPC_MAX_SEND_MESSAGE_BYTES must be an integer from 65536"),
        ("DATABASE_CONNECT_TIMEOUT", "0", "DATABASE_CONNECT_TIMEOUT must be an integer from 1 to 3600"),
    ],
)
def test_production_refuses_to_start_with_a_number_out_of_its_range(variable: str, value: str, message: str) -> None:
    result = _start(DJANGO_SECRET_KEY="s" * 60, JWT_SIGNING_KEY="j" * 60, **{variable: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable} must be" in result.stderr and message in result.stderr


def test_production_starts_with_the_numbers_whose_zero_means_none() -> None:
    zeros = ["CACHE_LOCAL_SECONDS", "GRPC_METRICS_PORT", "DATABASE_STATEMENT_TIMEOUT_MS", "DATABASE_CONN_MAX_AGE"]
    zeros += ["DATABASE_RETRY_WINDOW", "CACHE_RETRY_AFTER", "GRPC_SHUTDOWN_GRACE", "SECURE_HSTS_SECONDS"]
    zeros += ["TRUSTED_PROXY_COUNT", "COMPRESSION_MIN_BYTES", "GRAPHQL_MAX_ALIASES", "GRAPHQL_DOCUMENT_CACHE_SIZE"]
    zeros += ["GRAPHQL_METRICS_MAX_OPERATIONS"]
    result = _start(DJANGO_SECRET_KEY="s" * 60, JWT_SIGNING_KEY="j" * 60, **dict.fromkeys(zeros, "0"))
    assert result.returncode == 0, result.stderr


def test_every_number_of_the_settings_is_read_through_a_checked_reader() -> None:
    unchecked = [
        f"{path.name}:{number}"
        for path in (settings.BASE_DIR / "config").rglob("*.py")
        # the readers themselves, and gunicorn's own settings, which gunicorn checks
        if path.name not in {"env.py", "gunicorn.py"}
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"env\.(int|float)\(|cast=(int|float)|(int|float)\(os\.(environ|getenv)", line)
    ]
    assert unchecked == [], "read these with config.env.integer or config.env.seconds, which check the range"


def test_the_readers_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKHUB_TEST_NUMBER", "65535")
    assert integer("TASKHUB_TEST_NUMBER", 1, minimum=1, maximum=65535) == 65535
    with pytest.raises(ImproperlyConfigured, match="from 1 to 65534, not '65535'"):
        integer("TASKHUB_TEST_NUMBER", 1, minimum=1, maximum=65534)
    monkeypatch.setenv("TASKHUB_TEST_NUMBER", "1e-3")
    assert seconds("TASKHUB_TEST_NUMBER", 1.0, strict=True) == 0.001
    monkeypatch.setenv("TASKHUB_TEST_NUMBER", "1_000")
    assert integer("TASKHUB_TEST_NUMBER", 1, minimum=1) == 1000
    monkeypatch.setenv("TASKHUB_TEST_NUMBER", "86401")
    with pytest.raises(ImproperlyConfigured, match="at most 86400, not '86401'"):
        seconds("TASKHUB_TEST_NUMBER", 1.0)
    monkeypatch.setenv("TASKHUB_TEST_NUMBER", "0.0")
    assert seconds("TASKHUB_TEST_NUMBER", 1.0) == 0.0
    with pytest.raises(ImproperlyConfigured, match=r"greater than 0 and at most 86400, not '0\.0'"):
        seconds("TASKHUB_TEST_NUMBER", 1.0, strict=True)
    monkeypatch.delenv("TASKHUB_TEST_NUMBER")
    assert seconds("TASKHUB_TEST_NUMBER", 0.25, strict=True) == 0.25
    assert integer("TASKHUB_TEST_NUMBER", 7, minimum=0) == 7
