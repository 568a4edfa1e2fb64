"""REST error mapping: every error becomes RFC 9457 problem details (application/problem+json).

DRF's and Django's exceptions become the `core.errors` they stand for; the status comes from the one
table, `core.errors.OUTCOMES` (docs/api/errors.md), and the body from `core.problems`, which the
GraphQL endpoint and the site-wide error pages share.
Unexpected exceptions are not handled here: Django logs them and `config.views.server_error` answers
a generic 500 that names only the request id.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from core import errors
from core.problems import PROBLEM_CONTENT_TYPE as PROBLEM_CONTENT_TYPE
from core.problems import problem_of as problem_of

# DRF's own exceptions -> the core error each one is.
_DRF_ERRORS: dict[type[exceptions.APIException], type[errors.ApplicationError]] = {
    exceptions.ParseError: errors.MalformedRequest,
    exceptions.MethodNotAllowed: errors.MethodNotAllowed,
    exceptions.NotAcceptable: errors.NotAcceptable,
    exceptions.UnsupportedMediaType: errors.UnsupportedMediaType,
}


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested ValidationError detail into {"field" | "field.sub": [messages]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for name, value in detail.items():
            key = name if name != "non_field_errors" else "__all__"
            flat.update(_field_errors(value, f"{prefix}.{key}" if prefix else key))
        return flat
    if isinstance(detail, list) and detail and all(isinstance(item, str) for item in detail):
        return {prefix or "__all__": [str(item) for item in detail]}
    if isinstance(detail, list):
        flat = {}
        for index, value in enumerate(detail):
            flat.update(_field_errors(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "__all__": [str(detail)]}


def _detail_text(detail: Any) -> str:
    """DRF details are strings, or (simplejwt's InvalidToken) a dict with a "detail" sentence."""
    if isinstance(detail, dict):
        detail = detail.get("detail", "")
    return str(detail)


def as_application_error(exc: BaseException) -> errors.ApplicationError | None:
    """The core error a DRF or Django exception stands for (then `core.errors.translate`), or None."""
    if isinstance(exc, exceptions.ValidationError):
        return errors.InvalidInput.for_fields(_field_errors(exc.detail))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return errors.NotAuthenticated(_detail_text(exc.detail))
    if isinstance(exc, exceptions.PermissionDenied):
        return errors.PermissionDenied(_detail_text(exc.detail))  # e.g. why CSRF failed
    if isinstance(exc, DjangoPermissionDenied):
        return errors.PermissionDenied()
    if isinstance(exc, exceptions.NotFound | Http404):
        return errors.NotFound()
    if isinstance(exc, exceptions.Throttled):
        return errors.RateLimited(retry_after=int(getattr(exc, "wait", None) or 1))
    if isinstance(exc, RequestDataTooBig):
        return errors.RequestTooLarge()
    if isinstance(exc, exceptions.APIException):
        for drf_class, error_class in _DRF_ERRORS.items():
            if isinstance(exc, drf_class):
                return error_class(_detail_text(exc.detail))
        return None  # an APIException of our own making would be a bug: it has no row
    return errors.translate(exc)


def to_problem(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """(status, body, headers) for an exception a client may see, or None for an unexpected one."""
    app_error = as_application_error(exc)
    if app_error is None:
        return None
    return problem_of(app_error)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER."""
    mapped = to_problem(exc)
    if mapped is None:
        return None
    status_code, body, headers = mapped
    view = context.get("view")
    request = context.get("request")
    auth_header = view.get_authenticate_header(request) if status_code == 401 and view and request else None
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    response = Response(body, status=status_code, headers=headers)
    if status_code == 503:
        # An outage, answered and logged once (core.outages): not an ERROR line per request from Django.
        response._has_been_logged = True  # type: ignore[attr-defined]
    renderer = getattr(request, "accepted_renderer", None)
    if renderer is None or renderer.format == "json":
        response.content_type = PROBLEM_CONTENT_TYPE
    return response
