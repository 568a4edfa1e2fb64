"""REST error mapping: every error becomes RFC 9457 problem details (application/problem+json).

One table maps the protocol-neutral `core.errors` codes to HTTP statuses (docs/api/errors.md). DRF's own
exceptions (parse errors, 405, 406, 415, throttling) keep their status and get the same body.
Unexpected exceptions are not handled here: Django logs them and `config.views.server_error` answers
a generic 500 that names only the request id.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from core import errors
from observability.middleware import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE = "urn:taskhub:problem:{code}"

STATUS_BY_CODE: dict[str, int] = {
    errors.InvalidInput.code: status.HTTP_400_BAD_REQUEST,
    errors.NotAuthenticated.code: status.HTTP_401_UNAUTHORIZED,
    errors.PermissionDenied.code: status.HTTP_403_FORBIDDEN,
    errors.NotFound.code: status.HTTP_404_NOT_FOUND,
    errors.StaleVersion.code: status.HTTP_412_PRECONDITION_FAILED,
    errors.IdempotencyKeyReused.code: status.HTTP_422_UNPROCESSABLE_ENTITY,
    errors.IdempotencyKeyInFlight.code: status.HTTP_409_CONFLICT,
    errors.RateLimited.code: status.HTTP_429_TOO_MANY_REQUESTS,
    errors.ServiceUnavailable.code: status.HTTP_503_SERVICE_UNAVAILABLE,
    errors.TimeBudgetExceeded.code: status.HTTP_504_GATEWAY_TIMEOUT,
}

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

# DRF exceptions that have no core equivalent keep their status under these codes.
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
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


def to_problem(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """(status, body, headers) for an exception a client may see, or None for an unexpected one."""
    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.ValidationError):
        fields = _field_errors(exc.detail)
        exc = errors.InvalidInput.for_fields(fields)
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        exc = errors.NotAuthenticated(_detail_text(exc.detail))
    elif isinstance(exc, exceptions.PermissionDenied):
        exc = errors.PermissionDenied(_detail_text(exc.detail))  # e.g. why CSRF failed
    elif isinstance(exc, DjangoPermissionDenied):
        exc = errors.PermissionDenied()
    elif isinstance(exc, exceptions.NotFound | Http404):
        exc = errors.NotFound()
    elif isinstance(exc, exceptions.Throttled):
        exc = errors.RateLimited(retry_after=int(getattr(exc, "wait", None) or 1))
    elif isinstance(exc, RequestDataTooBig):
        return 413, problem(413, "request_too_large", "The request body is larger than 1 MiB."), headers
    elif isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        return exc.status_code, problem(exc.status_code, code, _detail_text(exc.detail)), headers

    app_error = errors.translate(exc)
    if app_error is None:
        return None
    status_code = STATUS_BY_CODE.get(app_error.code, status.HTTP_400_BAD_REQUEST)
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
