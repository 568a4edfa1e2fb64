"""Fixtures of the contract suite: every test that takes `connect` runs once per protocol.

`connect.as_user(user)`, `connect.anonymous()`, `connect.with_api_key(user, read_only=...)` and
`connect.with_token(raw)` build a driver of the test's protocol (tests/contract/drivers.py); the
test id names the protocol, e.g. `test_crud[graphql]`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.drivers import PROTOCOLS, Connect, Driver


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connect(protocol: str, db: None) -> Connect:
    return Connect(protocol)


@pytest.fixture
def alice(user: Any, connect: Connect) -> Driver:
    """An editor's driver (the `user` fixture)."""
    return connect.as_user(user)


@pytest.fixture
def bob(other_user: Any, connect: Connect) -> Driver:
    """Another editor's driver (the `other_user` fixture)."""
    return connect.as_user(other_user)


@pytest.fixture
def rate_limits(settings: Any) -> Callable[..., None]:
    """Switch rate limits on, generous except for the scopes given, e.g. `rate_limits(user=["3/h"])`.

    Hour windows keep a test away from a window boundary.
    """

    def set_limits(**scopes: list[str]) -> None:
        settings.RATE_LIMITS_ENABLED = True
        settings.RATE_LIMITS = {"anon": ["1000/h"], "user": ["1000/h"], "token": ["1000/h"], **scopes}

    return set_limits
