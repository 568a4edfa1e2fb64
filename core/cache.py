"""A cache that never fails a request, and hit/miss/error counts summed over every process.

Every cache call in the project goes through `safe_cache`: a fault (Redis down, timeout, bad value)
is logged, counted, and answered as a miss, and for `CACHE_RETRY_AFTER` seconds afterwards the cache
is skipped so a dead server costs one timeout, not one per request.

Counts are kept in process memory and added to shared counters in the cache itself about once a
second, so `stats()` sums all processes (those that have flushed) without a round trip per request.
Errors seen while the cache is down are flushed once it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from core.errors import PermissionDenied
from core.types import Actor
from observability import metrics
from observability.tracing import internal_span

logger = logging.getLogger(__name__)

_MISSING = object()
_STAT_NAMES = ("hits", "misses", "errors")
_FLUSH_INTERVAL = 1.0


class SafeCache:
    """Wraps Django's default cache; each method swallows cache faults and counts them."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._lock = threading.Lock()
        self._pending = dict.fromkeys(_STAT_NAMES, 0)
        self._last_flush = time.monotonic()
        self._skip_until = 0.0
        self._local = threading.local()

    @property
    def backend(self) -> Any:
        """The cache backend of this thread, kept for the thread's life.

        Django keeps backends per context, not per thread, and grpcio runs every call in a fresh
        contextvars.Context: `caches[alias]` alone would build a new backend (and Redis client) for
        each gRPC call, a large share of a cached GetTask (bench/README.md).
        """
        backend = getattr(self._local, "backend", None)
        if backend is None:
            backend = self._local.backend = caches[self.alias]
        return backend

    def forget_backends(self) -> None:
        """Drop the kept backends (the CACHES setting changed)."""
        self._local = threading.local()

    @property
    def resting(self) -> bool:
        """True for CACHE_RETRY_AFTER seconds after a fault: callers skip the cache server meanwhile."""
        return time.monotonic() < self._skip_until

    @property
    def enabled(self) -> bool:
        return bool(settings.CACHE_ENABLED) and not self.resting

    # -- reads -------------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """Return the value, or None on a miss or a fault."""
        if not self.enabled:
            return None
        with internal_span("cache.get"):
            try:
                value = self.backend.get(key, _MISSING)
            except Exception:
                self._fault("get", key)
                return None
        if value is _MISSING:
            self._count("misses")
            return None
        self._count("hits")
        return value

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        if not self.enabled or not keys:
            return {}
        try:
            found: dict[str, Any] = self.backend.get_many(keys)
        except Exception:
            self._fault("get_many", keys[0])
            return {}
        with self._lock:
            self._pending["hits"] += len(found)
            self._pending["misses"] += len(keys) - len(found)
        metrics.CACHE_HITS.inc(len(found))
        metrics.CACHE_MISSES.inc(len(keys) - len(found))
        self._maybe_flush()
        return found

    # -- writes ------------------------------------------------------------------------------------
    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        with internal_span("cache.set"):
            self._call("set", key, value, settings.CACHE_TTL if timeout is None else timeout)

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store only if absent; True if stored. A fault answers False."""
        return bool(self._call("add", key, value, settings.CACHE_TTL if timeout is None else timeout))

    def delete(self, key: str) -> None:
        self._call("delete", key)

    def incr(self, key: str, delta: int = 1) -> int | None:
        """Increment a counter, creating it (without expiry) if absent; None on a fault."""
        if not self.enabled:
            return None
        try:
            self.backend.add(key, 0, timeout=None)
            return int(self.backend.incr(key, delta))
        except Exception:
            self._fault("incr", key)
            return None

    def _call(self, method: str, key: str, *args: Any) -> Any:
        if not self.enabled:
            return None
        try:
            return getattr(self.backend, method)(key, *args)
        except Exception:
            self._fault(method, key)
            return None

    # -- counts ------------------------------------------------------------------------------------
    def record_fault(self, method: str, key: str) -> None:
        """Log and count a fault of the cache server seen by a caller that talks to it directly."""
        self._fault(method, key)

    def _fault(self, method: str, key: str) -> None:
        # The key names a data shape, never a credential; the exception says why Redis failed.
        logger.warning("cache %s failed for %s; serving without the cache", method, key, exc_info=True)
        self._skip_until = time.monotonic() + settings.CACHE_RETRY_AFTER
        with self._lock:
            self._pending["errors"] += 1
        metrics.CACHE_ERRORS.inc()

    def _count(self, name: str) -> None:
        with self._lock:
            self._pending[name] += 1
        (metrics.CACHE_HITS if name == "hits" else metrics.CACHE_MISSES).inc()
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= _FLUSH_INTERVAL:
            self.flush_stats()

    def flush_stats(self) -> None:
        """Add this process's pending counts to the shared counters; keep them if the cache is down."""
        with self._lock:
            pending, self._pending = self._pending, dict.fromkeys(_STAT_NAMES, 0)
            self._last_flush = time.monotonic()
        if not any(pending.values()):
            return
        failed = not self.enabled
        for name, count in pending.items():
            if not count:
                continue
            if not failed:
                try:
                    self.backend.add(_stat_key(name), 0, timeout=None)
                    self.backend.incr(_stat_key(name), count)
                    continue
                except Exception:
                    failed = True
                    self._fault("incr", _stat_key(name))
            with self._lock:
                self._pending[name] += count

    def stats(self) -> dict[str, int]:
        """Hits, misses and errors summed over every process that shares the cache."""
        self.flush_stats()
        totals = dict.fromkeys(_STAT_NAMES, 0)
        if self.enabled:
            try:
                stored = self.backend.get_many([_stat_key(name) for name in _STAT_NAMES])
                for name in _STAT_NAMES:
                    totals[name] = int(stored.get(_stat_key(name), 0))
            except Exception:
                logger.warning("cache stats read failed", exc_info=True)
        with self._lock:  # what this process could not flush yet
            for name in _STAT_NAMES:
                totals[name] += self._pending[name]
        return totals

    def reset(self) -> None:
        """Forget local state (tests, and forked workers that must not inherit the parent's counts)."""
        with self._lock:
            self._pending = dict.fromkeys(_STAT_NAMES, 0)
        self._skip_until = 0.0


def _stat_key(name: str) -> str:
    return f"cache-stats:{name}"


safe_cache = SafeCache()


@receiver(setting_changed, dispatch_uid="core.cache.forget_backends")
def _caches_changed(setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        safe_cache.forget_backends()


def cache_stats(*, actor: Actor) -> dict[str, object]:
    """Hit, miss and error counts of the shared cache, summed over all processes. Managers only.

    Raises PermissionDenied.
    """
    if not actor.sees_all:
        raise PermissionDenied("Only managers may read the cache statistics.")
    totals = safe_cache.stats()
    lookups = totals["hits"] + totals["misses"]
    return {
        "backend": safe_cache.backend.__class__.__name__,
        **totals,
        "hit_ratio": round(totals["hits"] / lookups, 4) if lookups else None,
    }
