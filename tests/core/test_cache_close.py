"""core.cache.connect_close_caches: Django's `close_caches` runs at the end of a request only when a
configured cache closes something; taskhub's own caches (local memory, django-redis keeping its pool)
never do, and skip the lookups it costs."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches, close_caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import request_finished
from django.test import Client, override_settings
from django_redis.client import DefaultClient

closed: list[str] = []


class ClosingCache(LocMemCache):
    """A cache that does something on close, as memcached's backends do."""

    def close(self, **kwargs: Any) -> None:
        closed.append("closed")


class ClosingClient(DefaultClient):  # type: ignore[misc]
    """A django-redis client with a close of its own."""

    def close(self) -> None:
        closed.append("closed")


def _connected() -> bool:
    return any(ref() is close_caches for _, ref, *_ in request_finished.receivers)


REDIS = "redis://127.0.0.1:6379/0"


def _redis(**options: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": "core.redis_cache.RedisCache", "LOCATION": REDIS, "OPTIONS": options}}


@pytest.mark.parametrize(
    ("configured", "close_connection", "connected"),
    [
        ({"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}, False, False),
        (_redis(CLIENT_CLASS="core.redis_cache.RedisClient"), False, False),
        ({"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS}}, False, False),
        (_redis(CLIENT_CLASS="core.redis_cache.RedisClient", CLOSE_CONNECTION=True), False, True),
        (_redis(CLIENT_CLASS="core.redis_cache.RedisClient"), True, True),  # DJANGO_REDIS_CLOSE_CONNECTION
        (_redis(CLIENT_CLASS="django_redis.client.ShardClient"), False, False),  # DefaultClient's close
        (_redis(CLIENT_CLASS="tests.core.test_cache_close.ClosingClient"), False, True),
        ({"default": {"BACKEND": "tests.core.test_cache_close.ClosingCache"}}, False, True),
    ],
)
def test_close_caches_is_connected_only_when_a_cache_closes_something(
    configured: dict[str, Any], close_connection: bool, connected: bool
) -> None:
    with override_settings(CACHES=configured, DJANGO_REDIS_CLOSE_CONNECTION=close_connection):
        assert _connected() is connected
    assert not _connected()  # the project's caches again


@pytest.mark.django_db
def test_a_cache_that_closes_is_closed_at_the_end_of_each_request() -> None:
    with override_settings(CACHES={"default": {"BACKEND": "tests.core.test_cache_close.ClosingCache"}}):
        closed.clear()
        client = Client()
        caches["default"].get("x")  # made in this context, as a view would: the request's end closes it
        client.get("/healthz")

    assert closed
