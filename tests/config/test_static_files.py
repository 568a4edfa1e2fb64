"""Production static files: collectstatic succeeds with the real storage, vendored files stay intact."""

import hashlib
from pathlib import Path

from django.conf import settings


def test_collectstatic_with_production_storage(production_static_root: str) -> None:
    """The session's `collectstatic` run with the production storage (tests/conftest.py) succeeded."""
    root = Path(production_static_root)
    vendored = Path(settings.BASE_DIR) / "api_graphql/static/api_graphql/graphiql/graphiql.min.js"
    collected = root / "api_graphql/graphiql/graphiql.min.js"
    assert hashlib.sha384(collected.read_bytes()).digest() == hashlib.sha384(vendored.read_bytes()).digest()
    assert (root / "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").exists()
    assert (root / "staticfiles.json").exists()
