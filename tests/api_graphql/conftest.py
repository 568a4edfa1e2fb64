"""Fixtures and helpers of the GraphQL adapter tests: real requests through django.test.Client to /graphql/.

`gql(client, query, variables, **headers)` POSTs one JSON document and returns the Django response.
Like tests/api_rest/conftest.py, each request runs its `transaction.on_commit` callbacks when it ends:
pytest-django wraps every test in a transaction that never commits, and without this the cache
refresh and list invalidation of a write would never happen. Nothing of ours is mocked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client, TestCase

from api_graphql.schema import _schema_for
from core.auth import api_key_create
from tests.conftest import access_token
from tests.streaming import asgi_server  # noqa: F401 - the fixture of the websocket tests

URL = "/graphql/"

TASK_FIELDS = """
    id ownerId title description priority status completed dueDate tags
    createdAt updatedAt completedAt version
"""


def gql(client: Client, query: str, variables: dict[str, Any] | None = None, **headers: Any) -> Any:
    """POST one GraphQL document as JSON; on_commit callbacks of the request run when it ends."""
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(URL, json.dumps(payload), content_type="application/json", **headers)


def body_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body: dict[str, Any] = json.loads(response.content)
    return body


def data_of(response: Any) -> dict[str, Any]:
    """The `data` of a successful response (no errors at all)."""
    body = body_of(response)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def only_error(response: Any, code: str) -> dict[str, Any]:
    """The single error of the response, which carries `extensions.code == code`."""
    body = body_of(response)
    errors = body.get("errors")
    assert errors and len(errors) == 1, body
    error: dict[str, Any] = errors[0]
    assert error["extensions"]["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    return error


def codes_of(response: Any) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body_of(response).get("errors", [])]


def bearer(user: Any) -> dict[str, str]:
    """Headers of a request sending a real JWT access token of `user`."""
    return {"HTTP_AUTHORIZATION": f"Bearer {access_token(user)}"}


@pytest.fixture
def as_user(user: Any) -> dict[str, str]:
    """Headers of the editor `user`."""
    return bearer(user)


@pytest.fixture
def api_key_headers() -> Callable[..., dict[str, str]]:
    """`api_key_headers(user, read_only=False)`: headers sending a real API key made by core.auth."""

    def build(user: Any, **options: Any) -> dict[str, str]:
        _, raw = api_key_create(user=user, name="graphql test key", **options)
        return {"HTTP_X_API_KEY": raw}

    return build


@pytest.fixture
def rate_limits(settings: Any) -> Callable[..., None]:
    """Switch rate limits on, generous except for the scopes given, e.g. `rate_limits(user=["2/h"])`.

    Hour windows keep tests away from a window boundary.
    """

    def set_limits(**scopes: list[str]) -> None:
        settings.RATE_LIMITS_ENABLED = True
        settings.RATE_LIMITS = {
            "anon": ["1000/h"],
            "user": ["1000/h"],
            "token": ["1000/h"],
            "login_user": ["1000/h"],
            **scopes,
        }

    return set_limits


@pytest.fixture
def rebuilt_schemas() -> Iterator[None]:
    """The depth and alias limits are read when a schema is built (once per process and switch
    combination, api_graphql.schema); a test that changes them gets schemas built afresh, and
    leaves none built with its settings behind."""
    _schema_for.cache_clear()
    yield
    _schema_for.cache_clear()
