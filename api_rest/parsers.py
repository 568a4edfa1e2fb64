"""The REST body parser: DRF's JSON parser with a nesting limit (`core.encoding.loads_bounded`)."""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from core.encoding import loads_bounded


class BoundedJSONParser(JSONParser):
    """JSON bodies nested deeper than `core.encoding.MAX_JSON_DEPTH` are 400 `malformed_request`, like
    any body that is not valid JSON, instead of a RecursionError (500) in the parser or the serializer.

    A `charset` parameter is honoured, as DRF honours it, when it names a text encoding (utf-8, utf-16,
    latin-1); one naming another kind of codec Python knows (`zlib`, `bz2`: bytes to bytes; `rot13`:
    text to text) is 415, not a 500 from the codec. Django has already ignored names no codec has."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        # CodecInfo's own flag, which str.encode and bytes.decode check to refuse the same codecs.
        if not getattr(codecs.lookup(encoding), "_is_text_encoding", True):
            raise UnsupportedMediaType(media_type or self.media_type)
        try:
            text = codecs.getreader(encoding)(stream).read()
            return loads_bounded(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
