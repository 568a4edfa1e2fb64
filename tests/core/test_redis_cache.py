"""core.redis_cache: django-redis' reads without the int() attempt on pickles, and django-prometheus'
counters moved per read, on a real Redis."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django_prometheus.cache.metrics import django_cache_get_total, django_cache_hits_total, django_cache_misses_total

from core.redis_cache import RedisCache

pytestmark = pytest.mark.redis


@pytest.fixture
def backend() -> Any:
    cache = RedisCache(
        settings.REDIS_URL,
        {"KEY_PREFIX": "test-redis-cache", "OPTIONS": {"CLIENT_CLASS": "core.redis_cache.RedisClient"}},
    )
    yield cache
    cache.delete_many(["int", "negative", "pickled", "text", "big", "missing"])


def _count(metric: Any) -> float:
    return metric.labels(backend="redis")._value.get()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("int", 42),
        ("negative", -7),
        ("big", 2**70),  # pickled by django-redis: beyond what it stores as digits? either way, equal
        ("text", "12"),  # a string of digits stays a string
        ("pickled", ("row", 1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), ["a"], None, True)),
    ],
)
def test_values_read_back_as_they_were_stored(backend: Any, key: str, value: Any) -> None:
    backend.set(key, value)

    assert backend.get(key) == value
    assert type(backend.get(key)) is type(value)


def test_a_read_moves_django_prometheus_counters(backend: Any) -> None:
    backend.set("pickled", ("x",))
    gets, hits, misses = (
        _count(django_cache_get_total),
        _count(django_cache_hits_total),
        _count(django_cache_misses_total),
    )

    backend.get("pickled")
    backend.get("missing", "fallback")

    assert _count(django_cache_get_total) - gets == 2
    assert _count(django_cache_hits_total) - hits == 1
    assert _count(django_cache_misses_total) - misses == 1
