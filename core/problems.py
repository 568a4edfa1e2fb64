"""RFC 9457 problem details of a core error, as plain data: the status, the body and the headers.

Every HTTP answer of an error that is not a GraphQL result uses them: the REST adapter, the GraphQL
endpoint's transport errors (a body that is not JSON, a wrong method or media type) and the site-wide
error pages (docs/api/errors.md, "Errors of one protocol only"). The status comes from the one table,
`core.errors.OUTCOMES`; the title is the status's standard reason phrase.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from core import errors
from observability.middleware import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE = "urn:taskhub:problem:{code}"


def title_of(status_code: int) -> str:
    """The status's reason phrase (RFC 9110): "Length Required" for 411, "Error" for no known status."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def problem(status_code: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE.format(code=code),
        "title": title_of(status_code),
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    if request_id := current_request_id():
        body["request_id"] = request_id
    return body


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
        headers["Retry-After"] = str(errors.RETRY_AFTER_UNAVAILABLE)
    return status_code, problem(status_code, app_error.code, app_error.message, **extra), headers
