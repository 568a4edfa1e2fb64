"""Fixtures of the REST adapter tests.

`client_for` (and so `api`) is overridden to build a `CommittingAPIClient`: pytest-django wraps each
test in a transaction that is never committed, so `transaction.on_commit` callbacks (cache refresh,
list invalidation, API-key cache eviction) would never run and reads after writes would see stale
cache entries that production never serves. This client runs the callbacks of each request when the
request ends, as the real commit would. Nothing of ours is mocked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import TestCase
from rest_framework.test import APIClient

from core.auth import api_key_create
from tests.conftest import access_token


class CommittingAPIClient(APIClient):
    """An APIClient whose requests commit: their on_commit callbacks run when the response is back."""

    def request(self, **kwargs: Any) -> Any:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(**kwargs)


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    """An API client sending a real JWT of `user` (None: anonymous); keyword arguments go to the client."""

    def build(user: Any | None, **client_kwargs: Any) -> APIClient:
        client = CommittingAPIClient(**client_kwargs)
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
        return client

    return build


@pytest.fixture
def anon(client_for: Callable[..., APIClient]) -> APIClient:
    return client_for(None)


@pytest.fixture
def key_client(client_for: Callable[..., APIClient]) -> Callable[..., tuple[APIClient, Any]]:
    """`key_client(user, read_only=False, expires_at=None)` → (client sending X-API-Key, the ApiKey row)."""

    def build(user: Any, **options: Any) -> tuple[APIClient, Any]:
        key, raw = api_key_create(user=user, name="test key", **options)
        client = client_for(None)
        client.credentials(HTTP_X_API_KEY=raw)
        return client, key

    return build


@pytest.fixture
def rate_limits(settings: Any) -> Callable[..., None]:
    """Switch rate limits on with generous defaults; pass a scope to make it small, e.g. anon=["2/h"].

    Hour windows keep tests away from a window boundary (a minute one resets every 60 s).
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
