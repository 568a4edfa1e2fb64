"""Production static files: collectstatic succeeds with the real storage, vendored files stay intact."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def test_collectstatic_with_production_storage(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "s" * 60,
        "JWT_SIGNING_KEY": "j" * 60,
        "DJANGO_STATIC_ROOT": str(tmp_path),
    }
    env.pop("DJANGO_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input"],
        env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    vendored = Path(settings.BASE_DIR) / "api_graphql/static/api_graphql/graphiql/graphiql.min.js"
    collected = tmp_path / "api_graphql/graphiql/graphiql.min.js"
    assert hashlib.sha384(collected.read_bytes()).digest() == hashlib.sha384(vendored.read_bytes()).digest()
    assert (tmp_path / "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").exists()
    assert (tmp_path / "staticfiles.json").exists()
