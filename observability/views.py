"""The HTTP views of observability: health (observability.health) and /metrics. Wired in config/urls.py."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from observability import metrics
from observability.health import OK, UNAVAILABLE, concerns, overall_status, readiness


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no dependency."""
    return JsonResponse({"status": OK})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    ready, components = readiness()
    body: dict[str, Any] = {"status": overall_status(ready, components), "components": components}
    if not ready:
        body["failing"] = [name for name, c in components.items() if c["status"] == UNAVAILABLE]
    return _probe_answer(JsonResponse(body, status=200 if ready else 503))


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    ready, components = readiness()
    return _probe_answer(
        JsonResponse(
            {
                "status": overall_status(ready, components),
                "version": settings.TASKHUB_VERSION,
                "components": components,
                "concerns": concerns(),
            },
            status=200 if ready else 503,
        )
    )


def _probe_answer(response: JsonResponse) -> JsonResponse:
    """A 503 of a probe is an answer, not a server error: the failing check has logged a warning
    already, and Django's "Service Unavailable" ERROR line every few seconds of an outage (one per
    probe) would only bury it. Django skips responses marked as logged."""
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format of every metric (summed over all processes in multiprocess mode)."""
    return HttpResponse(metrics.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")
