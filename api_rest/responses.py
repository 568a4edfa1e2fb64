"""JSON responses of bytes the views already hold, with headers that are cheap to ask, set and send."""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer

from core.headers import QuickHeaders


class JsonBytesResponse(HttpResponse):
    """`body`, bytes DRF's JSONRenderer rendered, answered as DRF would (its finalize_response still
    adds Vary and Allow), with QuickHeaders."""

    def __init__(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        # Content-Type among the headers: HttpResponse then finds it instead of asking for an absent one.
        super().__init__(body, status=status, headers={"Content-Type": JSONRenderer.media_type})
        self.headers = quick = QuickHeaders.adopt(self.headers)
        if headers:
            for name, value in headers.items():
                quick[name] = value
