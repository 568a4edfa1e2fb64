"""Site-wide views: the health probes, /metrics behind its token, ReDoc's bundle, and the error pages
of every URL, wired in config/urls.py (who may see what: docs/operations.md, "Exposure").

The API adapters render their own errors; these answer for everything else (an unknown URL, a body
too large before any view runs, an unexpected error) in the same problem-details form as REST.
"""

from __future__ import annotations

import functools
import hmac
from pathlib import Path
from typing import Any

import drf_spectacular_sidecar
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from api_rest.errors import PROBLEM_CONTENT_TYPE, problem_of
from core import errors
from core.auth import actor_from_user, authenticate_api_key, authenticate_bearer
from core.errors import RETRY_AFTER_UNAVAILABLE
from core.health import OK, UNAVAILABLE, concerns, overall_status, readiness
from core.types import Actor, Role
from observability.views import metrics_view

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
    """The status for everyone; the version, the components and the concerns only for staff and
    managers, or with the metrics token (docs/operations.md, "Health")."""
    ready, components = readiness()
    body: dict[str, Any] = {"status": overall_status(ready, components)}
    if _may_see_details(request):
        body.update(version=settings.TASKHUB_VERSION, components=components, concerns=concerns())
    return _probe_answer(JsonResponse(body, status=200 if ready else 503))


def _probe_answer(response: JsonResponse) -> JsonResponse:
    """A 503 of a probe is an answer, not a server error: the failing check has logged the outage
    (once, core.outages), and Django's "Service Unavailable" ERROR line every few seconds of an
    outage (one per probe) would only bury it. Django skips responses marked as logged. A 503 says
    when to ask again, as the API's 503s do."""
    response._has_been_logged = True  # type: ignore[attr-defined]
    if response.status_code == 503:
        response["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    return response


def _may_see_details(request: HttpRequest) -> bool:
    if has_metrics_token(request):
        return True
    actor = _actor_of(request)
    return actor is not None and (actor.is_staff or Role.MANAGER in actor.roles)


def _actor_of(request: HttpRequest) -> Actor | None:
    """Who sends the request: a bearer token, an API key or the session, as the APIs take them; None
    for anyone else, for a credential that does not hold, and for one that cannot be checked while
    the database is down (an API key not cached yet, a session): the probe answers what it would
    without it, never a 500."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    try:
        if scheme.lower() == "bearer":
            return authenticate_bearer(token.strip())
        if raw_key := request.META.get("HTTP_X_API_KEY"):
            return authenticate_api_key(raw_key.strip())
        user = getattr(request, "user", None)
        return actor_from_user(user) if user is not None and user.is_authenticated else None
    except Exception as exc:
        if errors.translate(exc) is None:  # NotAuthenticated, or the database unavailable
            raise
        return None


# -- metrics ------------------------------------------------------------------------------------------


def has_metrics_token(request: HttpRequest) -> bool:
    """`Authorization: Bearer <METRICS_TOKEN>`, compared in constant time; False when no token is set."""
    expected = settings.METRICS_TOKEN
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """/metrics behind METRICS_TOKEN (docs/operations.md, "Metrics"): 401 without it. With no token
    configured, open only with DJANGO_DEBUG on; otherwise 403, closed until one is set."""
    if settings.METRICS_TOKEN:
        if not has_metrics_token(request):
            response = _problem_response(
                errors.NotAuthenticated("Send the metrics token: Authorization: Bearer <token>.")
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not settings.DEBUG:
        return _problem_response(errors.PermissionDenied("Metrics are closed: no METRICS_TOKEN is configured."))
    return metrics_view(request)


# -- API documentation --------------------------------------------------------------------------------

# ReDoc's bundle shows a logo it loads from Redocly's CDN; a server without internet cannot reach it,
# and the CSP (img-src 'self' data:) refuses it. It is replaced by an empty image of this server's own.
_REDOC_BUNDLE = (
    Path(drf_spectacular_sidecar.__file__).parent / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
)
_REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"


@functools.cache
def _redoc_bundle_source() -> bytes:
    source = _REDOC_BUNDLE.read_text(encoding="utf-8")
    if _REDOC_CDN_LOGO not in source:  # a new ReDoc build: look at what it loads from where
        raise RuntimeError(f"ReDoc's bundle no longer names {_REDOC_CDN_LOGO}; check its outside requests.")
    return source.replace(_REDOC_CDN_LOGO, _EMPTY_IMAGE).encode()


def redoc_bundle(request: HttpRequest) -> HttpResponse:
    """drf-spectacular-sidecar's ReDoc bundle with no request to the internet (templates/drf_spectacular/redoc.html)."""
    response = HttpResponse(_redoc_bundle_source(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
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
