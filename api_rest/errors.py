"""REST error mapping: every error becomes RFC 9457 problem details (application/problem+json).

DRF's and Django's exceptions become the `core.errors` they stand for; the status comes from the one
table, `core.errors.OUTCOMES` (docs/api/errors.md).
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
from observability.middleware import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE = "urn:taskhub:problem:{code}"

TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Gateway timeout",
}

# DRF's own exceptions -> the core error each one is.
_DRF_ERRORS: dict[type[exceptions.APIException], type[errors.ApplicationError]] = {
    exceptions.ParseError: errors.MalformedRequest,
    exceptions.MethodNotAllowed: errors.MethodNotAllowed,
    exceptions.NotAcceptable: errors.NotAcceptable,
    exceptions.UnsupportedMediaType: errors.UnsupportedMediaType,
}


def problem(status_code: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE.format(code=code),
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    if request_id := current_request_id():
        body["request_id"] = request_id
    return body


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


def problem_of(app_error: errors.ApplicationError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) of a core error, its status from `core.errors.OUTCOMES`."""
    status_code = errors.outcome_of(app_error).http_status
    headers: dict[str, str] = {}
    extra = dict(app_error.extra)
    if "fields" in extra:
        extra["errors"] = extra.pop("fields")
    if isinstance(app_error, errors.RateLimited):
        headers["Retry-After"] = str(app_error.retry_after)
    if isinstance(app_error, errors.ServiceUnavailable):
        headers["Retry-After"] = "5"
    return status_code, problem(status_code, app_error.code, app_error.message, **extra), headers


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
    renderer = getattr(request, "accepted_renderer", None)
    if renderer is None or renderer.format == "json":
        response.content_type = PROBLEM_CONTENT_TYPE
    return response
