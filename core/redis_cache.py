"""The Redis cache backend of CACHES (config/settings/components/cache.py): django-redis, with
django-prometheus' counts when metrics are on, and four costs of every read taken out, and the
rate limit's.

- `RedisClient.decode`: django-redis tries `int(value)` on every value it reads before unpickling
  it (a stored int is kept as plain digits), which raises and catches a ValueError on every cached
  task. A pickle starts with its PROTO opcode (0x80), which digits never do: those go straight to
  the unpickler, everything else as before.
- `RedisClient.get_client(write=False)`: each thread reads through its own connection, held for the
  thread's life (redis-py's `single_connection_client`), instead of taking one from the shared
  pool and giving it back on every read. The pool's way costs a lock twice, its bookkeeping and a
  poll of the socket (a system call) per command, about 4% of a cached REST GET. redis-py
  disconnects a connection whose command failed or timed out mid-answer, so no stale answer is
  ever read; a connection the server closed while it was idle (a restart, an idle timeout) is
  reconnected once at its next command instead of failing it. Writes and everything else that
  asks for `write=True` keep django-redis' shared client and its pool.
- `RedisClient.get`: a read sends GET on that connection and reads its answer itself (redis-py's
  `Connection.send_command` and `read_response`), without redis-py's client around them (its retry
  wrapper, lock, callbacks and option parsing cost twice what sending and reading do: ~45,000
  instructions of every cached read). What the client did that a read needs is kept: a failed or
  timed-out command disconnects (`read_response`), an error reply is raised, and a connection the
  server closed while idle is tried once more. While tracing is on, reads keep the client, which
  OpenTelemetry's Redis instrumentation wraps.
- `RedisClient.get_many`: MGET the same way (a list page's read: its scope's generation and the
  page, in one round trip).
- `RedisClient.run_script`: the rate limit's script, which every request runs while rate limits are
  on, and a list generation's bump (core.cache), which every write makes twice, go the same way
  (EVALSHA on the held connection, which with one server is the server that takes writes):
  redis-py's client, pool and Script cost about 70 Python calls a request.
- The process's copy (core.redis_copy, while CACHE_LOCAL_SECONDS > 0 and tracing is off): `get` and
  `get_many` answer copied keys from it when they can and keep what they read; every write drops its
  keys from it once Redis has answered, or the write failed.
- `RedisCache.get`: django-prometheus' backend looks up its metrics' `backend="redis"` children
  (`labels()`, which validates and locks) twice per read; here they are looked up once per process.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django_prometheus.cache.backends.redis import RedisCache as PrometheusRedisCache  # type: ignore[import-untyped]
from django_prometheus.cache.metrics import (  # type: ignore[import-untyped]
    django_cache_get_fail_total,
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)
from django_redis import cache, exceptions
from django_redis.client import DefaultClient
from django_redis.exceptions import CompressorError, ConnectionInterrupted
from redis import ConnectionError as RedisConnectionError
from redis import Redis, RedisError, ResponseError
from redis import TimeoutError as RedisTimeoutError
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from redis.retry import Retry

from core.redis_copy import LocalCopy, shared_copy
from observability import tracing
from observability.metrics import _adders, label_adder

_PICKLE = b"\x80"
# What django-redis turns into ConnectionInterrupted around a command (its DefaultClient's list;
# socket.timeout is the built-in TimeoutError).
_COMMAND_ERRORS = (RedisConnectionError, RedisTimeoutError, ResponseError, TimeoutError)
# A held connection's policy: a ConnectionError (the server closed it, or refused the reconnection)
# is tried once more on a new connection, at once; a timeout is never tried again, so a stalled
# Redis costs one socket timeout, as with the pool.
_RECONNECT_ONCE = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def _expiring(name: str) -> Any:
    """django-redis' method `name(key, time, version=None, client=None)`, which changes a key's expiry,
    then the key dropped from the process's copy."""

    def method(self: RedisClient, key: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            return getattr(DefaultClient, name)(self, key, *args, **kwargs)  # type: ignore[no-any-return]
        finally:
            self._dropped(key, version=kwargs.get("version", args[1] if len(args) > 1 else None))

    method.__name__ = name
    return method


class RedisClient(DefaultClient):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader = threading.local()  # .client and .pid: this thread's reading client, of this process
        copy = self._options.get("LOCAL_COPY")
        self._copy = None if not copy or len(self._server) != 1 else self._local_copy(**copy)

    def _local_copy(self, *, prefixes: list[str], max_entries: int, **timing: float) -> LocalCopy:
        """The process's copy (core.redis_copy) of this cache: every thread's client shares it."""
        url, factory = self._server[0], self.connection_factory

        def connect() -> Any:  # the listener's connection: as the pool's, in RESP2 (its messages come as pub/sub)
            pool = factory.get_or_create_connection_pool(factory.make_connection_params(url))
            return pool.connection_class(**{**pool.connection_kwargs, "protocol": 2})

        made = [self.make_key(prefix) for prefix in prefixes]
        identity = (url, *made, max_entries, *sorted(timing.items()))
        return shared_copy(identity, lambda: LocalCopy(connect=connect, prefixes=made, limit=max_entries, **timing))

    def get_client(self, write: bool = True, tried: list[int] | None = None) -> Any:
        if write or len(self._server) != 1:  # writes, and replicas' choice of server: django-redis'
            return super().get_client(write=write, tried=tried)
        reader = self._reader
        if getattr(reader, "pid", None) != os.getpid():  # first read of this thread, or a forked child
            shared = super().get_client(write=False, tried=tried)
            try:
                # Takes a connection from the pool and connects it: may fail as a command would.
                client = Redis(connection_pool=shared.connection_pool, single_connection_client=True)
            except RedisError as e:
                raise ConnectionInterrupted(connection=shared) from e
            held: Any = client.connection  # the one connection of a single_connection_client
            held.retry = _RECONNECT_ONCE  # this connection's policy only (Connection.retry)
            reader.client, reader.pid = client, os.getpid()
        return reader.client

    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        # While tracing is on, through redis-py's client: OpenTelemetry's Redis instrumentation wraps
        # it (a span per command), not the connection.
        if client is not None or len(self._server) != 1 or tracing.enabled():
            return super().get(key, default=default, version=version, client=client)
        made = self.make_key(key, version=version)
        copy, marks = self._copy, None
        if copy is not None and made.startswith(copy.prefixes):
            kept, marks = copy.lookup(made)
            if kept is not None:
                return self.decode(kept)
        client = self.get_client(write=False)
        try:
            value = _held_command(client.connection, "GET", made)
        except _COMMAND_ERRORS as e:
            if marks is not None:
                copy.keep({}, marks)  # type: ignore[union-attr]  # only forgets them
            raise ConnectionInterrupted(connection=client) from e
        if marks is not None:
            copy.keep({made: value}, marks)  # type: ignore[union-attr]
        return default if value is None else self.decode(value)

    def get_many(self, keys: Any, version: Any = None, client: Any = None) -> dict[Any, Any]:
        # MGET on the held connection, as `get` sends GET: a list page's read (its scope's
        # generation and the page) is one round trip without redis-py's client around it.
        if client is not None or len(self._server) != 1 or tracing.enabled() or not keys:
            return super().get_many(keys, version=version, client=client)  # type: ignore[no-any-return]
        made = {self.make_key(key, version=version): key for key in keys}
        copy, marks = self._copy, None
        if copy is not None and any(key.startswith(copy.prefixes) for key in made):
            kept, marks = copy.lookup_many(made)
            if kept is not None:
                return {made[key]: self.decode(value) for key, value in kept.items()}
        client = self.get_client(write=False)
        try:
            values = _held_command(client.connection, "MGET", *made)
        except _COMMAND_ERRORS as e:
            if marks is not None:
                copy.keep({}, marks)  # type: ignore[union-attr]  # only forgets them
            raise ConnectionInterrupted(connection=client) from e
        found = {key: value for key, value in zip(made, values, strict=True) if value is not None}
        if marks is not None:
            copy.keep(found, marks)  # type: ignore[union-attr]
        return {made[key]: self.decode(value) for key, value in found.items()}

    # Writes: django-redis' own, then their keys dropped from the process's copy once Redis has
    # answered (`add` is `set`; `incr` and `decr` are `_incr`; an expiry can delete the key).

    def _dropped(self, *keys: Any, version: Any = None, prefix: Any = None) -> None:
        if self._copy is not None:
            self._copy.drop([self.make_key(key, version=version, prefix=prefix) for key in keys])

    def set(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Any = None,
        client: Any = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        try:
            return super().set(key, value, timeout, version, client, nx, xx)  # type: ignore[no-any-return]
        finally:
            self._dropped(key, version=version)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None, client: Any = None) -> None:
        try:
            super().set_many(data, timeout, version, client)  # `set`s in a pipeline: dropped again once it ran
        finally:
            self._dropped(*data, version=version)

    def delete(self, key: Any, version: Any = None, prefix: Any = None, client: Any = None) -> int:
        try:
            return super().delete(key, version, prefix, client)  # type: ignore[no-any-return]
        finally:
            self._dropped(key, version=version, prefix=prefix)

    def delete_many(self, keys: Any, version: Any = None, client: Any = None) -> int:
        keys = list(keys)
        try:
            return super().delete_many(keys, version, client)  # type: ignore[no-any-return]
        finally:
            self._dropped(*keys, version=version)

    def delete_pattern(self, *args: Any, **kwargs: Any) -> int:
        try:
            return super().delete_pattern(*args, **kwargs)  # type: ignore[no-any-return]
        finally:
            if self._copy is not None:
                self._copy.drop_all()

    def clear(self, client: Any = None) -> None:
        try:
            super().clear(client)
        finally:
            if self._copy is not None:
                self._copy.drop_all()

    def _incr(
        self, key: Any, delta: int = 1, version: Any = None, client: Any = None, ignore_key_check: bool = False
    ) -> int:
        try:
            return super()._incr(key, delta, version, client, ignore_key_check)  # type: ignore[no-any-return]
        finally:
            self._dropped(key, version=version)

    def persist(self, key: Any, version: Any = None, client: Any = None) -> bool:
        try:
            return super().persist(key, version, client)  # type: ignore[no-any-return]
        finally:
            self._dropped(key, version=version)

    # expire, pexpire, expire_at, pexpire_at, touch: a time that has passed deletes the key.
    expire = _expiring("expire")
    pexpire = _expiring("pexpire")
    expire_at = _expiring("expire_at")
    pexpire_at = _expiring("pexpire_at")
    touch = _expiring("touch")

    def run_script(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """A registered Lua script (redis-py's `Script`), run as `script(keys=..., args=...)` runs it:
        EVALSHA by its digest, and SCRIPT LOAD then EVALSHA again when the server does not know it
        (a restart). With one server and tracing off, on the thread's held connection, as `get`:
        the rate limit counts every request this way."""
        try:
            if len(self._server) != 1 or tracing.enabled():
                return script(keys=keys, args=args, client=self.get_client(write=True))
            client = self.get_client(write=False)  # the one server's, held by this thread
            command = ("EVALSHA", script.sha, len(keys), *keys, *args)
            try:
                return _held_command(client.connection, *command)
            except NoScriptError:
                _held_command(client.connection, "SCRIPT", "LOAD", script.script)  # loads it under the same digest
                return _held_command(client.connection, *command)
        finally:
            if self._copy is not None:
                self._copy.drop(keys)  # a script may write its keys (a generation's bump does)

    def decode(self, value: bytes | int | str) -> Any:
        if type(value) is bytes and value[:1] == _PICKLE:  # int() of it would fail: skip the try
            try:  # noqa: SIM105  (suppress() costs three calls, on every read)
                value = self._compressor.decompress(value)
            except CompressorError:
                pass
            return self._serializer.loads(value)
        return super().decode(value)


def _held_command(connection: Any, *args: Any) -> Any:
    """One command on a thread's held connection, and its answer. A ConnectionError (the server closed
    the connection while it was idle) is tried once more on a new one, as `_RECONNECT_ONCE` has the
    client do; a timeout or an error reply is not."""
    try:
        connection.send_command(*args)
        return connection.read_response()
    except RedisConnectionError:
        connection.disconnect()
        connection.send_command(*args)
        return connection.read_response()


# The label_adder() keys of the counters every read moves (`RedisCache.get`, its lookups inline).
_GET_TOTAL = (django_cache_get_total, "redis")
_HITS_TOTAL = (django_cache_hits_total, "redis")


class RedisCache(PrometheusRedisCache):  # type: ignore[misc]
    """django-prometheus' RedisCache: the same four counters, moved the same way."""

    @cache.omit_exception  # type: ignore[untyped-decorator]
    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        try:
            (_adders.get(_GET_TOTAL) or label_adder(*_GET_TOTAL))(1)
            cached = self.client.get(key, default=None, version=version, client=client)
        except exceptions.ConnectionInterrupted as e:
            label_adder(django_cache_get_fail_total, "redis")(1)
            if self._ignore_exceptions:
                if self._log_ignored_exceptions:
                    self.logger.error(str(e))
                return default
            raise
        if cached is not None:
            (_adders.get(_HITS_TOTAL) or label_adder(*_HITS_TOTAL))(1)
            return cached
        label_adder(django_cache_misses_total, "redis")(1)
        return default
