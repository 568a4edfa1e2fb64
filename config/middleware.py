"""HTTP middleware that belongs to no adapter: it shapes every HTTP response the same way."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponseBase
from django.middleware.gzip import GZipMiddleware


class CompressionMiddleware(GZipMiddleware):
    """Django's GZipMiddleware (with its BREACH padding), for bodies of COMPRESSION_MIN_BYTES or more:
    below ~1 KiB gzip saves too little to pay for the CPU."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        if not settings.COMPRESSION_ENABLED:
            raise MiddlewareNotUsed
        super().__init__(get_response)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not response.streaming and len(response.content) < settings.COMPRESSION_MIN_BYTES:  # type: ignore[attr-defined]
            return response
        return super().process_response(request, response)
