"""Production settings refuse to start without their secrets."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

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
