"""Static files storage for production."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from whitenoise.storage import CompressedManifestStaticFilesStorage

# Vendored builds served byte for byte: GraphiQL's page checks them against fixed SRI hashes.
_VERBATIM = ("api_graphql/graphiql/",)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    """WhiteNoise's compressed, hashed storage, except that vendored files are not rewritten.

    Manifest storage rewrites references inside CSS and JS (here the `sourceMappingURL` comments of
    the GraphiQL bundle, whose .map files are not shipped), which would fail `collectstatic` and
    change the bytes the integrity attributes pin.
    """

    def url_converter(self, name: str, hashed_files: Any, template: str | None = None) -> Callable[[Any], str]:
        if name.startswith(_VERBATIM):
            return lambda match: str(match["matched"])
        return super().url_converter(name, hashed_files, template)
