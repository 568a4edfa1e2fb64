"""Assertions shared by the REST adapter tests."""

from __future__ import annotations

import json
from typing import Any

from api_rest.serializers import TaskOutputSerializer

PROBLEM_TYPE = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}
TASK_KEYS = set(TaskOutputSerializer().fields)
TASKS = "/api/v1/tasks"


def task_url(task_id: Any) -> str:
    return f"{TASKS}/{task_id}"


def assert_problem(response: Any, status: int, code: str | None = None, *, fields: set[str] | None = None) -> dict:
    """The response is RFC 9457 problem details with this status (and code / field errors)."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM_TYPE
    body = json.loads(response.content)
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["request_id"] == response["X-Request-ID"]
    if code is not None:
        assert body["code"] == code, body
    if fields is not None:
        assert set(body["errors"]) == fields, body
        assert all(isinstance(messages, list) and messages for messages in body["errors"].values()), body
    return body
