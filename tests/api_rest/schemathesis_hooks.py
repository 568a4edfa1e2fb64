"""Schemathesis hooks of tests/api_rest/test_schemathesis.py (loaded through schemathesis.toml).

One rule of a task body has no JSON Schema form: at most 20 tags remain once each is trimmed and
lowercased and duplicates are dropped (up to 100 may be sent; docs/domain.md, "The task"). The schema
says it in words. Bodies over it are not generated, so a schema-valid body refused for any other
reason still fails the run.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MAX_TAGS = 20  # tasks.models.MAX_TAGS (this module runs inside schemathesis, without Django)
_TASK_BODIES = {"POST /api/v1/tasks", "PUT /api/v1/tasks/{task_id}", "PATCH /api/v1/tasks/{task_id}"}


@schemathesis.hook
def filter_body(context: Any, body: Any) -> bool:
    operation = getattr(context, "operation", None)
    if operation is None or operation.label not in _TASK_BODIES:
        return True
    tags = body.get("tags") if isinstance(body, dict) else None
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return True
    return len({tag.strip().lower() for tag in tags}) <= MAX_TAGS


# GraphQL: a resolver's refusal in the error table (docs/api/errors.md) is the domain's answer, not a
# failure of the server; schemathesis counts every resolver error without a code it knows as a server
# error. An error with any other code (INTERNAL_SERVER_ERROR, UNAVAILABLE, TIMEOUT) or none, and any
# HTTP 5xx, still fails the run.
_DOMAIN_CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "PRECONDITION_FAILED",
    "CONFLICT",
    "RATE_LIMITED",
}


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if "graphql" not in type(case.operation.schema).__module__ or response.status_code >= 500:
        return True
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return True
    codes = {error.get("extensions", {}).get("code") for error in errors if isinstance(error, dict)}
    return not (codes and codes <= _DOMAIN_CODES)
