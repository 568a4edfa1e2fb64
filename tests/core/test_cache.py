"""The cache never fails a request, counts hits/misses/errors for every process, and comes back."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.test import override_settings

from core.cache import cache_stats, safe_cache
from core.errors import PermissionDenied
from tests.factories import actor_of

DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
    }
}


def test_hits_and_misses_are_counted() -> None:
    safe_cache.set("k", 1)
    assert safe_cache.get("k") == 1
    assert safe_cache.get("absent") is None
    totals = safe_cache.stats()
    assert (totals["hits"], totals["misses"], totals["errors"]) == (1, 1, 0)


@pytest.mark.redis
def test_a_dead_redis_is_a_miss_counted_as_an_error_and_the_cache_comes_back() -> None:
    safe_cache.set("k", "v")
    with override_settings(CACHES=DEAD_REDIS, CACHE_RETRY_AFTER=0.05):
        started = time.monotonic()
        assert safe_cache.get("k") is None
        safe_cache.set("k", "other")  # skipped: the cache is resting after the fault
        assert safe_cache.add("k2", 1) is False
        assert time.monotonic() - started < 1
        assert safe_cache.stats()["errors"] >= 1
    time.sleep(0.06)
    assert safe_cache.get("k") == "v"  # back on the live Redis, data intact


@pytest.mark.redis
def test_counts_are_summed_over_processes() -> None:
    script = (
        "import django; django.setup();"
        "from core.cache import safe_cache;"
        "[safe_cache.get('nothing-here') for _ in range(3)];"
        "safe_cache.flush_stats()"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "REDIS_URL": settings.REDIS_URL}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=settings.BASE_DIR, timeout=60)
    safe_cache.get("also-nothing")
    assert safe_cache.stats()["misses"] == 4


def test_stats_are_for_managers_only(user, manager) -> None:
    with pytest.raises(PermissionDenied):
        cache_stats(actor=actor_of(user))
    safe_cache.get("x")
    stats = cache_stats(actor=actor_of(manager))
    assert stats["misses"] == 1 and stats["hit_ratio"] == 0.0


@pytest.mark.redis
def test_a_generation_s_bump_is_one_command_and_starts_from_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list generation moves on in one command on Redis (a script: created from the clock when
    absent, never from a value used before, then incremented), not `add` then django-redis' `incr`."""
    key = "test:generation"
    safe_cache.bump(key)  # the server learns the script
    safe_cache.delete(key)
    connection = safe_cache.backend.client.get_client(write=False).connection
    sent: list[str] = []
    real = connection.send_command
    monkeypatch.setattr(connection, "send_command", lambda *args, **kw: sent.append(args[0]) or real(*args, **kw))
    started = time.time_ns()

    safe_cache.bump(key)
    safe_cache.bump(key)

    assert sent == ["EVALSHA", "EVALSHA"]
    assert started + 2 <= safe_cache.get(key) <= time.time_ns() + 2
