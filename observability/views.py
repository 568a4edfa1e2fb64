"""The HTTP view of observability: /metrics. Wired in config/urls.py."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

from observability import metrics


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format of every metric (summed over all processes in multiprocess mode)."""
    return HttpResponse(metrics.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")
