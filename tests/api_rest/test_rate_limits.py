"""Rate limits: per IP for anonymous clients, per user when authenticated, stricter on token endpoints;
429 + Retry-After + RateLimit-* headers; X-Forwarded-For only counts behind trusted proxies."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from rest_framework.test import APIClient

from core.ratelimit import Window
from tasks.models import Task
from tests.api_rest.helpers import TASKS, assert_problem

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
PASSWORD = "pass-word-123"  # tests.factories.UserFactory


def test_limits_are_off_unless_switched_on(anon: APIClient) -> None:
    assert not settings.RATE_LIMITS_ENABLED
    for _ in range(5):
        response = anon.get(TASKS)
        assert response.status_code == 401
        assert "RateLimit-Limit" not in response


def test_429_problem_with_retry_after_and_ratelimit_headers(api: APIClient, rate_limits: Any) -> None:
    rate_limits(user=["3/h"])

    allowed = [api.get(TASKS) for _ in range(3)]
    refused = api.get(TASKS)

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r["RateLimit-Limit"] for r in allowed] == ["3", "3", "3"]
    assert [r["RateLimit-Remaining"] for r in allowed] == ["2", "1", "0"]
    assert all(0 < int(r["RateLimit-Reset"]) <= 3600 for r in allowed)
    body = assert_problem(refused, 429, "rate_limited")
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert body["retry_after"] == int(refused["Retry-After"])
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Remaining"] == "0"
    assert int(refused["RateLimit-Reset"]) == int(refused["Retry-After"])


def test_headers_show_the_most_restrictive_window(api: APIClient, rate_limits: Any) -> None:
    rate_limits(user=["100/m", "5/h"])

    response = api.get(TASKS)

    assert response["RateLimit-Limit"] == "5"
    assert response["RateLimit-Remaining"] == "4"


def test_a_refused_write_does_nothing(api: APIClient, rate_limits: Any) -> None:
    rate_limits(user=["1/h"])
    assert api.post(TASKS, {"title": "first"}, format="json").status_code == 201

    assert_problem(api.post(TASKS, {"title": "second"}, format="json"), 429, "rate_limited")
    assert list(Task.objects.values_list("title", flat=True)) == ["first"]


def test_anonymous_clients_are_limited_per_ip(client_for: Any, rate_limits: Any) -> None:
    rate_limits(anon=["2/h"])
    client = client_for(None)

    first = [client.get(TASKS, REMOTE_ADDR="198.51.100.1") for _ in range(2)]
    refused = client.get(TASKS, REMOTE_ADDR="198.51.100.1")
    other_ip = client.get(TASKS, REMOTE_ADDR="198.51.100.2")

    assert [r.status_code for r in first] == [401, 401]  # counted although refused for credentials
    assert_problem(refused, 429, "rate_limited")
    assert "Retry-After" in refused
    assert other_ip.status_code == 401


def test_bad_credentials_count_against_the_ip(client_for: Any, rate_limits: Any) -> None:
    rate_limits(anon=["2/h"])
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer stolen-or-guessed")

    statuses = [client.get(TASKS).status_code for _ in range(3)]

    assert statuses == [401, 401, 429]


def test_authenticated_clients_are_limited_per_user(
    client_for: Any, user: Any, other_user: Any, rate_limits: Any
) -> None:
    rate_limits(user=["2/h"], anon=["1000/h"])
    mine, theirs = client_for(user), client_for(other_user)

    assert mine.get(TASKS, REMOTE_ADDR="203.0.113.1").status_code == 200
    assert mine.get(TASKS, REMOTE_ADDR="203.0.113.2").status_code == 200
    # A new address does not help the same user...
    assert_problem(mine.get(TASKS, REMOTE_ADDR="203.0.113.3"), 429, "rate_limited")
    # ...and one user's use does not limit another on the same address.
    assert theirs.get(TASKS, REMOTE_ADDR="203.0.113.1").status_code == 200


def test_api_key_and_jwt_of_a_user_share_the_user_counter(
    client_for: Any, key_client: Any, user: Any, rate_limits: Any
) -> None:
    rate_limits(user=["2/h"])
    by_key, _ = key_client(user)

    assert client_for(user).get(TASKS).status_code == 200
    assert by_key.get(TASKS).status_code == 200
    assert_problem(by_key.get(TASKS), 429, "rate_limited")


def test_token_endpoints_have_their_own_stricter_limit(anon: APIClient, user: Any, rate_limits: Any) -> None:
    rate_limits(token=["2/h"], anon=["50/h"])
    credentials = {"username": user.username, "password": PASSWORD}

    assert anon.post(TOKEN, credentials, format="json").status_code == 200
    assert anon.post(TOKEN, {**credentials, "password": "guess"}, format="json").status_code == 401
    refused = anon.post(TOKEN, credentials, format="json")
    body = assert_problem(refused, 429, "rate_limited")
    assert "access" not in body
    assert refused["RateLimit-Limit"] == "2"
    # Refresh shares the token scope; the other anonymous endpoints do not.
    assert_problem(anon.post(f"{TOKEN}/refresh", {"refresh": "x"}, format="json"), 429, "rate_limited")
    assert anon.get(TASKS).status_code == 401


def test_default_token_limits_are_stricter_than_anonymous_ones() -> None:
    token = sorted((w.seconds, w.limit) for w in map(Window.parse, settings.RATE_LIMITS["token"]))
    anon = sorted((w.seconds, w.limit) for w in map(Window.parse, settings.RATE_LIMITS["anon"]))

    assert [seconds for seconds, _ in token] == [seconds for seconds, _ in anon]
    assert all(t < a for (_, t), (_, a) in zip(token, anon, strict=True))


def test_forged_x_forwarded_for_does_not_reset_the_anonymous_limit(
    client_for: Any, rate_limits: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    rate_limits(anon=["2/h"])
    client = client_for(None)

    statuses = [
        client.get(TASKS, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(4)
    ]

    assert statuses == [401, 401, 429, 429]


def test_behind_one_trusted_proxy_the_limit_follows_the_last_forwarded_address(
    client_for: Any, rate_limits: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    rate_limits(anon=["2/h"])
    client = client_for(None)
    proxy = "10.0.0.1"

    def get(forwarded_for: str, remote_addr: str = proxy) -> int:
        return client.get(TASKS, REMOTE_ADDR=remote_addr, HTTP_X_FORWARDED_FOR=forwarded_for).status_code

    assert get("192.0.2.50") == 401
    assert get("6.6.6.6, 192.0.2.50") == 401
    # The client's own claims (left of what the proxy appended) change nothing:
    assert get("7.7.7.7, 192.0.2.50") == 429
    assert get("192.0.2.50", remote_addr="10.0.0.2") == 429  # nor does another proxy replica
    # Another real client behind the same proxy has its own counter:
    assert get("192.0.2.51") == 401


@pytest.mark.redis
def test_counters_live_in_redis_with_an_expiry(api: APIClient, user: Any, rate_limits: Any) -> None:
    rate_limits(user=["5/h"])
    api.get(TASKS)
    api.get(TASKS)

    # Another connection pool (another process, in effect) sees the same counter.
    other_process = caches.create_connection("default")
    key = f"rl:user:user:{user.pk}:3600:{int(time.time() // 3600)}"
    assert other_process.get(key) == 2
    assert 0 < other_process.ttl(key) <= 3600
