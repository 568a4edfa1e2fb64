"""What a serving process does before its first request: core.startup.freeze_startup_heap, run by
config.wsgi and config.asgi on import (so in every gunicorn / granian worker) and by grpcserver."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

SCRIPT = """
import gc, json, sys
import {module}
print(json.dumps({{
    "frozen": gc.get_freeze_count(),
    "views_loaded": all(name in sys.modules for name in ("api_rest.apis", "api_graphql.schema")),
}}))
"""


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_importing_the_application_loads_the_views_and_freezes_the_startup_heap(module: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(module=module)],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["views_loaded"]  # what the first request would import lazily is in the frozen heap
    assert state["frozen"] > 50_000  # Django, DRF, strawberry, grpc, OpenTelemetry: ~130,000 objects
