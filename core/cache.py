"""A cache that never fails a request, and hit/miss/error counts summed over every process.

Every cache call in the project goes through `safe_cache`: a fault (Redis down, timeout, bad value)
is logged, counted, and answered as a miss, and for `CACHE_RETRY_AFTER` seconds afterwards the cache
is skipped so a dead server costs one timeout, not one per request.

A write's update of the cache (`replace`, `bump`) is never lost that way: when the cache cannot take
it (a fault, or skipped after one) the key is remembered, and invalidated as soon as the cache
answers again, before this process reads from it and by a background repair, so no process is
served the old entry for long after an outage (docs/architecture.md, "Cache").

Counts are kept in process memory and added to shared counters in the cache itself about once a
second, so `stats()` sums all processes (those that have flushed) without a round trip per request.
Errors seen while the cache is down are flushed once it is back.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.cache import caches, close_caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import request_finished, setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string
from django_redis.cache import RedisCache as DjangoRedisCache
from django_redis.client import DefaultClient

from core import outages
from core.errors import PermissionDenied
from core.types import Actor
from observability import metrics, tracing
from observability.switches import Switch
from observability.tracing import internal_span

logger = logging.getLogger(__name__)

_MISSING = object()
_STAT_NAMES = ("hits", "misses", "errors")
_FLUSH_INTERVAL = 1.0
# Every cache read counts one of these (metrics.adder: the increment without its per-call checks).
_add_hit, _add_miss = metrics.adder(metrics.CACHE_HITS), metrics.adder(metrics.CACHE_MISSES)

# What an invalidated key holds for INVALIDATED_TTL seconds: a miss to every reader, which `add`
# cannot replace, so a reader that loaded an older row before the write cannot store it afterwards.
INVALIDATED = "core.cache:invalidated"
INVALIDATED_TTL = 5
# Keys remembered for invalidation at most; past it, everything of ours in the cache is dropped.
PENDING_LIMIT = 10_000
# Seconds between two tries of the background repair while something is pending.
REPAIR_INTERVAL = 0.2
_INVALIDATE, _BUMP = "invalidate", "bump"


_CACHE_ON = Switch("CACHE_ENABLED")


class SafeCache:
    """Wraps Django's default cache; each method swallows cache faults and counts them."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._lock = threading.Lock()
        self._pending = dict.fromkeys(_STAT_NAMES, 0)
        self._last_flush = time.monotonic()
        self._skip_until = 0.0
        self._local = threading.local()
        # Write-side updates the cache did not take: key -> _INVALIDATE or _BUMP; or, past
        # PENDING_LIMIT, `_drop_all`. Guarded by `_lock`; `_repair_lock` lets one repair run at a time.
        self._unrepaired: dict[str, str] = {}
        self._drop_all = False
        self._unrepaired_since = 0.0
        self._repair_lock = threading.Lock()
        self._repairing = False  # a repair has taken the pending work and not yet made it
        self._repairer: threading.Thread | None = None
        self._repair_at_exit_registered = False

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
        return _CACHE_ON() and not self.resting

    # -- reads -------------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """Return the value, or None on a miss (an invalidated key included) or a fault."""
        if not self._readable():
            return None
        try:
            if tracing.enabled():
                with internal_span("cache.get"):
                    value = self.backend.get(key, _MISSING)
            else:  # no span context to enter: most reads, and every one a cached GetTask makes
                value = self.backend.get(key, _MISSING)
        except Exception:
            self._fault("get", key)
            return None
        outages.available("cache")
        if value is _MISSING or value == INVALIDATED:
            self._count("misses")
            return None
        self._count("hits")
        return value

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values found, by key (one round trip with Redis). Each key found counts a hit, each
        other a miss."""
        keys = list(keys)
        found = self.lookup_many(keys)
        if found is None:
            return {}
        self.count_lookups(hits=len(found), misses=len(keys) - len(found))
        return found

    def lookup_many(self, keys: list[str]) -> dict[str, Any] | None:
        """`get_many` for a caller that judges what it found and counts it itself (`count_lookups`):
        nothing is counted here. None when the cache was not asked (it is off, skipped after a fault,
        a repair is pending) or the read failed: then there is nothing to count."""
        if not keys or not self._readable():
            return None
        try:
            if tracing.enabled():
                with internal_span("cache.get_many"):
                    values = self.backend.get_many(keys)
            else:  # as in `get`: a list page's read makes this call
                values = self.backend.get_many(keys)
            found: dict[str, Any] = {key: value for key, value in values.items() if value != INVALIDATED}
        except Exception:
            self._fault("get_many", keys[0])
            return None
        outages.available("cache")
        return found

    def count_lookups(self, *, hits: int, misses: int) -> None:
        """Count lookups a caller judged itself (`lookup_many`): a value found may still be one it
        cannot use (a list page of an older generation)."""
        with self._lock:
            self._pending["hits"] += hits
            self._pending["misses"] += misses
        if hits:
            _add_hit(hits)
        if misses:
            _add_miss(misses)
        self._maybe_flush()

    def _readable(self) -> bool:
        """True when reads may go to the cache: it is not skipped, and every write-side update this
        process could not make has been made (else a read could return what a write replaced)."""
        on = _CACHE_ON.value  # `enabled`, inline: every read asks
        if not (on if on is not None else _CACHE_ON()) or time.monotonic() < self._skip_until:
            return False
        if self._unrepaired or self._drop_all or self._repairing:  # a hint read without the lock
            # Never wait for another thread's repair (it may be waiting on a stalled server): while
            # one runs, or this one fails, the read goes to the database.
            return self.repair(wait=False)
        return True

    # -- writes ------------------------------------------------------------------------------------
    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        with internal_span("cache.set"):
            self._call("set", key, value, settings.CACHE_TTL if timeout is None else timeout)

    def replace(self, key: str, value: Any, timeout: float | None = None) -> None:
        """Store what a write made of `key` (on commit). If the cache cannot take it now (a fault, or
        skipped after one), the key is invalidated as soon as the cache answers again (`repair`)."""
        if not settings.CACHE_ENABLED:
            return
        if self.resting:
            self._remember(key, _INVALIDATE)
            return
        with internal_span("cache.set"):
            try:
                self.backend.set(key, value, settings.CACHE_TTL if timeout is None else timeout)
            except Exception:
                # The command may still run when a stalled server wakes up: the repair's marker,
                # sent after the server answers again, comes later and wins.
                self._fault("set", key)
                self._remember(key, _INVALIDATE)
            else:
                self._published()

    def bump(self, key: str) -> None:
        """Change a generation counter (a write orphans what was cached under the old value). Created
        from the clock if absent, never from a value used before. Remembered like `replace`."""
        if not settings.CACHE_ENABLED:
            return
        if self.resting:
            self._remember(key, _BUMP)
            return
        try:
            _bump(self.backend, key)
        except Exception:
            self._fault("incr", key)
            self._remember(key, _BUMP)
        else:
            self._published()

    # -- the processes' copies of cached reads ----------------------------------------------------------
    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Around the `replace`s and `bump`s of one write: it returns once every process's copy of
        cached reads may answer only what they stored (`_published`), waiting once for all of them
        rather than once each."""
        local = self._local
        depth = getattr(local, "publishing", 0)
        local.publishing = depth + 1
        try:
            yield
        finally:
            local.publishing = depth
            if depth == 0:
                settled, local.settled = getattr(local, "settled", 0.0), 0.0
                if (wait := settled - time.monotonic()) > 0:
                    time.sleep(wait)

    def _published(self) -> None:
        """Redis has answered a write that changes what readers get: with the processes' copies of
        cached reads on (core.redis_copy), the write may be acknowledged only once each copy has
        heard from Redis since, or stopped answering: a copy answers for at most its lease after it
        sent a PING Redis answered, so that is a lease from now (docs/architecture.md, "The
        process's copy of cached reads")."""
        copy = getattr(getattr(self.backend, "client", None), "_copy", None)
        if copy is None:
            return
        settled = time.monotonic() + copy.lease
        local = self._local
        if getattr(local, "publishing", 0):
            local.settled = max(getattr(local, "settled", 0.0), settled)
        else:
            time.sleep(copy.lease)

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

    # -- repair of the updates the cache did not take ---------------------------------------------------
    def _remember(self, key: str, action: str) -> None:
        with self._lock:
            first = not self._unrepaired and not self._drop_all
            if first:
                self._unrepaired_since = time.monotonic()
            overflow = False
            if not self._drop_all:
                if key in self._unrepaired or len(self._unrepaired) < PENDING_LIMIT:
                    self._unrepaired[key] = action
                else:
                    self._unrepaired.clear()
                    self._drop_all = overflow = True
            self._start_repairer()
        if first:
            logger.warning(
                "cache did not take the update of %s (it is unreachable or skipped after a fault);"
                " it is invalidated once the cache answers, and reads wait for that",
                key,
            )
        if overflow:
            logger.warning(
                "more than %d cache updates wait for the cache; everything cached will be dropped", PENDING_LIMIT
            )

    def _start_repairer(self) -> None:
        """Start the background repair if it is not running (call with `_lock` held)."""
        if self._repairer is None:
            self._repairer = threading.Thread(target=self._repair_loop, name="cache-repair", daemon=True)
            self._repairer.start()
        if not self._repair_at_exit_registered:
            self._repair_at_exit_registered = True
            atexit.register(self._repair_at_exit)

    def _repair_at_exit(self) -> None:
        """A process that stops (SIGTERM in a rolling restart, a worker respawned) tries its pending
        repair once more: the background thread dies with it."""
        if not self._unrepaired and not self._drop_all:
            return
        if not self.repair():
            logger.warning(
                "stopping with %d cache updates the cache did not take; their entries may be served stale"
                " for up to CACHE_TTL",
                len(self._unrepaired),
            )

    def _repair_loop(self) -> None:
        """Try the repair every REPAIR_INTERVAL seconds until nothing is pending, then end. Other
        processes read the cache too: they stop seeing entries this process's writes replaced at most
        REPAIR_INTERVAL plus one Redis timeout after the cache answers again."""
        while True:
            time.sleep(REPAIR_INTERVAL)
            try:
                self.repair()
            except Exception:  # pragma: no cover - repair() catches the cache's faults; keep trying
                logger.exception("cache repair failed")
            with self._lock:
                if not self._unrepaired and not self._drop_all:
                    self._repairer = None
                    return

    def repair(self, *, wait: bool = True) -> bool:
        """Make the updates the cache did not take: mark each such key INVALIDATED (a miss that no
        reader's `add` replaces) or bump the generation; past PENDING_LIMIT, drop everything of ours.
        True when nothing is left to do. Tried even while the cache is skipped after a fault: a
        success ends the skipping. With `wait=False`, False at once if another thread is repairing."""
        if not self._repair_lock.acquire(blocking=wait):
            return False
        try:
            return self._repair()
        finally:
            with self._lock:
                self._repairing = False
            self._repair_lock.release()

    def _repair(self) -> bool:
        """repair()'s work, with `_repair_lock` held. Until it is done, `_repairing` keeps readers of
        this process off the cache: the keys have left the pending set but not yet got their markers."""
        with self._lock:
            work, drop_all, since = self._unrepaired, self._drop_all, self._unrepaired_since
            self._unrepaired, self._drop_all = {}, False
            self._repairing = bool(work) or drop_all
        if not work and not drop_all:
            return True
        backend = self.backend
        try:
            _round_trip(backend)
            if drop_all:
                _drop_everything(backend)
            if invalid := [key for key, action in work.items() if action == _INVALIDATE]:
                backend.set_many(dict.fromkeys(invalid, INVALIDATED), timeout=INVALIDATED_TTL)
            for key, action in work.items():
                if action == _BUMP:
                    _bump(backend, key)
        except Exception:
            with self._lock:  # all again next time: markers and extra bumps are harmless
                self._drop_all = self._drop_all or drop_all
                for key, action in work.items():
                    if self._drop_all:
                        break
                    if key in self._unrepaired or len(self._unrepaired) < PENDING_LIMIT:
                        self._unrepaired.setdefault(key, action)
                    else:
                        self._unrepaired.clear()
                        self._drop_all = True
                self._start_repairer()
            self._skip_until = time.monotonic() + settings.CACHE_RETRY_AFTER
            return False
        with self._lock:
            done = not self._unrepaired and not self._drop_all
        self._skip_until = 0.0  # it answers: stop skipping it
        outages.available("cache")
        logger.info(
            "cache repaired after %.1f s: %s",
            time.monotonic() - since,
            "everything dropped" if drop_all else f"{len(work)} keys invalidated or bumped",
        )
        return done

    # -- counts ------------------------------------------------------------------------------------
    def record_fault(self, method: str, key: str) -> None:
        """Log and count a fault of the cache server seen by a caller that talks to it directly."""
        self._fault(method, key)

    def _fault(self, method: str, key: str) -> None:
        # The key names a data shape, never a credential; the exception says why Redis failed.
        # Logged once per outage (core.outages): every request meanwhile is served without the cache.
        outages.unavailable("cache", f"cache {method} failed for {key}; serving without the cache", exc_info=_current())
        self._skip_until = time.monotonic() + settings.CACHE_RETRY_AFTER
        with self._lock:
            self._pending["errors"] += 1
        metrics.CACHE_ERRORS.inc()

    def _count(self, name: str) -> None:
        with self._lock:
            self._pending[name] += 1
        (_add_hit if name == "hits" else _add_miss)(1)
        if time.monotonic() - self._last_flush >= _FLUSH_INTERVAL:  # `_maybe_flush`, inline: every read counts
            self.flush_stats()

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
            self._unrepaired, self._drop_all = {}, False
            self._repairer = None  # a forked worker does not inherit its parent's thread
        self._skip_until = 0.0


# A generation's bump in one command: created from the clock if absent (never from a value used
# before), then incremented. Where the backend cannot run it, `add` then `incr`: with django-redis' own
# client two round trips, its `incr` itself a script sent as text (EVAL) each time.
_BUMP_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
"""


def _bump(backend: Any, key: str) -> None:
    run_script = getattr(getattr(backend, "client", None), "run_script", None)  # core.redis_cache's client
    if run_script is None:  # the local-memory cache, another django-redis client
        backend.add(key, time.time_ns(), timeout=None)
        backend.incr(key)
        return
    run_script(redis_script(backend, _BUMP_SCRIPT), [backend.make_key(key)], [time.time_ns()])


_scripts: dict[str, Any] = {}


def redis_script(backend: Any, text: str) -> Any:
    """redis-py's `Script` of the Lua `text`, made once per process for a django-redis `backend`: a
    Script needs a client only to hash its text, and each call names the client it runs on (the
    rate limit's counting, a generation's bump)."""
    script = _scripts.get(text)
    if script is None:
        script = _scripts[text] = backend.client.get_client(write=True).register_script(text)
    return script


def _round_trip(backend: Any) -> None:
    """Wait for one answer of the Redis server. Once it has answered, every command sent to it before
    (queued while it stalled, such as a write's update that timed out, or a reader's `add`) has run,
    so the markers sent next land after them, never under them."""
    client = getattr(backend, "client", None)
    if client is not None and hasattr(client, "get_client"):  # django-redis
        client.get_client(write=True).ping()


def _drop_everything(backend: Any) -> None:
    """Delete every key of ours: Redis keys under our prefix (SCAN, not FLUSHDB: the database may be
    shared), or the whole local-memory cache, which is this process's own."""
    if hasattr(backend, "delete_pattern"):
        backend.delete_pattern("*")
    else:
        backend.clear()


def _current() -> BaseException | None:
    return sys.exc_info()[1]


def _stat_key(name: str) -> str:
    return f"cache-stats:{name}"


safe_cache = SafeCache()


@receiver(setting_changed, dispatch_uid="core.cache.forget_backends")
def _caches_changed(setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        safe_cache.forget_backends()
    if setting in ("CACHES", "DJANGO_REDIS_CLOSE_CONNECTION"):
        connect_close_caches()


# -- closing at the end of a request ---------------------------------------------------------------------
def caches_close_something() -> bool:
    """False when no configured cache does anything on `close()`: Django's local-memory cache (its
    `close` is BaseCache's, empty) and django-redis' client without CLOSE_CONNECTION (it keeps its
    connection pool, django-redis' default), which are the backends taskhub configures."""
    for config in settings.CACHES.values():
        backend = import_string(config["BACKEND"])
        if backend.close is BaseCache.close:
            continue
        options = config.get("OPTIONS", {})
        client = import_string(options.get("CLIENT_CLASS", "django_redis.client.DefaultClient"))
        if (
            issubclass(backend, DjangoRedisCache)
            and backend.close is DjangoRedisCache.close
            and client.close is DefaultClient.close
            and not options.get("CLOSE_CONNECTION", getattr(settings, "DJANGO_REDIS_CLOSE_CONNECTION", False))
        ):
            continue
        return True
    return False


def connect_close_caches() -> None:
    """Django's `close_caches` on request_finished only when a configured cache closes something.

    At the end of every request Django asks each cache the request's context made to close; finding
    them takes two lookups in asgiref's Local, each raising and catching an exception when there is
    none (~46,000 instructions, 3 % of a cached REST GET), to close nothing with taskhub's caches.
    """
    request_finished.disconnect(close_caches)
    if caches_close_something():
        request_finished.connect(close_caches)


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
