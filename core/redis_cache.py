"""The Redis cache backend of CACHES (config/settings/components/cache.py): django-redis, with
django-prometheus' counts when metrics are on, and two costs of every read taken out.

- `RedisClient.decode`: django-redis tries `int(value)` on every value it reads before unpickling
  it (a stored int is kept as plain digits), which raises and catches a ValueError on every cached
  task. A pickle starts with its PROTO opcode (0x80), which digits never do: those go straight to
  the unpickler, everything else as before.
- `RedisCache.get`: django-prometheus' backend looks up its metrics' `backend="redis"` children
  (`labels()`, which validates and locks) twice per read; here they are looked up once per process.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from django_prometheus.cache.backends.redis import RedisCache as PrometheusRedisCache  # type: ignore[import-untyped]
from django_prometheus.cache.metrics import (  # type: ignore[import-untyped]
    django_cache_get_fail_total,
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)
from django_redis import cache, exceptions
from django_redis.client import DefaultClient
from django_redis.exceptions import CompressorError

from observability.metrics import label_child

_PICKLE = b"\x80"


class RedisClient(DefaultClient):  # type: ignore[misc]
    def decode(self, value: bytes | int | str) -> Any:
        if type(value) is bytes and value[:1] == _PICKLE:  # int() of it would fail: skip the try
            with suppress(CompressorError):
                value = self._compressor.decompress(value)
            return self._serializer.loads(value)
        return super().decode(value)


class RedisCache(PrometheusRedisCache):  # type: ignore[misc]
    """django-prometheus' RedisCache: the same four counters, moved the same way."""

    @cache.omit_exception  # type: ignore[untyped-decorator]
    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        try:
            label_child(django_cache_get_total, "redis").inc()
            cached = self.client.get(key, default=None, version=version, client=client)
        except exceptions.ConnectionInterrupted as e:
            label_child(django_cache_get_fail_total, "redis").inc()
            if self._ignore_exceptions:
                if self._log_ignored_exceptions:
                    self.logger.error(str(e))
                return default
            raise
        if cached is not None:
            label_child(django_cache_hits_total, "redis").inc()
            return cached
        label_child(django_cache_misses_total, "redis").inc()
        return default
