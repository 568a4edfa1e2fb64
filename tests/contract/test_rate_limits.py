"""Rate limits: per user when authenticated, per IP otherwise; `rate_limited` after the limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.drivers import Connect, Driver

pytestmark = pytest.mark.django_db


def test_a_user_is_limited_after_the_limit(
    rate_limits: Callable[..., None], alice: Driver, bob: Driver, connect: Connect, manager: Any
) -> None:
    rate_limits(user=["3/h"])

    first = alice.create({"title": "first"}).unwrap()  # 1
    assert alice.get(first["id"]).ok  # 2
    assert alice.list().ok  # 3

    assert alice.create({"title": "second"}).error == "rate_limited"
    assert alice.get(first["id"]).error == "rate_limited"
    assert alice.update(first["id"], {"title": "changed"}).error == "rate_limited"
    assert alice.delete(first["id"]).error == "rate_limited"
    assert alice.search("first").error == "rate_limited"

    # Counters are per user: others go on, and see that the refused writes changed nothing.
    assert bob.list().unwrap().items == []
    assert connect.as_user(manager).list().unwrap().items == [first]


def test_every_credential_of_a_user_shares_its_counter(
    rate_limits: Callable[..., None], connect: Connect, user: Any
) -> None:
    rate_limits(user=["2/h"])
    by_token, by_key = connect.as_user(user), connect.with_api_key(user)

    assert by_token.list().ok
    assert by_key.list().ok

    assert by_token.list().error == "rate_limited"
    assert by_key.list().error == "rate_limited"


def test_anonymous_clients_are_limited_per_ip_even_when_refused(
    rate_limits: Callable[..., None], connect: Connect, alice: Driver
) -> None:
    rate_limits(anon=["2/h"])
    anonymous, forger = connect.anonymous(), connect.with_token("not-a-jwt")

    assert anonymous.list().error == "unauthenticated"
    assert forger.create({"title": "x"}).error == "unauthenticated"

    assert anonymous.list().error == "rate_limited"
    assert forger.create({"title": "x"}).error == "rate_limited"
    assert alice.list().unwrap().items == []  # users have their own counters


def test_limits_off_means_no_limit(settings: Any, alice: Driver) -> None:
    settings.RATE_LIMITS_ENABLED = False
    settings.RATE_LIMITS = {"anon": ["1/h"], "user": ["1/h"], "token": ["1/h"], "login_user": ["1/h"]}

    assert all(alice.list().ok for _ in range(3))
