"""Site-wide views: the health probes and the error pages of every URL, wired in config/urls.py.

The API adapters render their own errors; these answer for everything else (an unknown URL, a body
too large before any view runs, an unexpected error) in the same problem-details form as REST.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from api_rest.errors import PROBLEM_CONTENT_TYPE, problem_of
from core import errors
from core.health import OK, UNAVAILABLE, concerns, overall_status, readiness

# -- health ------------------------------------------------------------------------------------------


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


# -- error handlers (handler400, handler403, handler404, handler500) -----------------------------------


def _problem_response(error: errors.ApplicationError) -> JsonResponse:
    status_code, body, headers = problem_of(error)
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Unknown URLs (and malformed ids in them) get a problem body too."""
    return _problem_response(errors.NotFound("No resource at this URL."))


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return _problem_response(errors.RequestTooLarge())
    return _problem_response(errors.BadRequest())


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _problem_response(errors.PermissionDenied("Forbidden."))


def server_error(request: HttpRequest) -> JsonResponse:
    """A generic body. The traceback goes to the log, under the same request id."""
    return _problem_response(
        errors.InternalError("An unexpected error occurred. Quote the request_id when you report it.")
    )
