"""A process's own copy of the cache entries its reads got from Redis, kept exact by the invalidation
messages Redis sends about them (its server-assisted client-side caching, "client tracking"). On
with Redis unless CACHE_LOCAL_SECONDS=0 (docs/architecture.md, "Cache": "The process's copy of
cached reads"). One copy per process and cache (`shared_copy`), whatever thread reads: Django gives each
thread a backend of its own.

A cached read that finds its key in the copy is answered without a round trip to Redis, which on a
threaded server costs about a quarter of a cached REST GET's CPU (bench/README.md, 2026-12-07). How
the copy stays exact:

- One connection, the listener, asks Redis for broadcast tracking of the copied key families
  (`CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX ...`, then SUBSCRIBE
  `__redis__:invalidate`, RESP2, Redis >= 6): whenever a key under those prefixes is changed or
  deleted, by anyone, Redis sends the listener its name (a flush: "everything"). Broadcast mode
  tracks prefixes, not the keys a connection read, so the threads' read connections need no tracking
  of their own and one of them closing loses nothing.
- Before answering from the copy, a read applies every message that has reached the socket (one
  `epoll` check, and it reads the socket when something is there).
- A read that missed marks its key with a token of its own before its command is sent; a message
  or a write about the key removes the mark, and the value is kept only if the read's mark is still
  there when its answer is: a message applied while the command was on the wire may be about the
  very value it returned.
- The process's own writes (`RedisClient.set`, `delete`, ... in core.redis_cache) drop their keys
  once Redis has answered them: a read after a write of the same process never sees the old value,
  without waiting for the message.
- The copy answers only while it has heard from Redis recently: the first read `ping_every` or
  more after the last answered PING was sent sends the next (`ping_every` < `lease`), and the copy
  is used only until `lease` after the last answered PING was sent (every message Redis sent before
  answering it has been applied). Writers do their part (core.cache, `SafeCache._published`): a
  write that changed a copied entry is acknowledged no sooner than `lease` after Redis answered it.
  So a read that begins after a write was acknowledged is answered from the copy only if a PING
  sent after Redis ran the write has been answered, and Redis sent the write's message before that
  answer, on the same connection: the copy never answers a value older than the last acknowledged
  write, whatever delays a message (a lost packet, a stall, another host), as long as every process
  has the same lease. A late PONG only lets the copy lapse (reads go to Redis) until one comes back
  within the lease; a PING unanswered for `answer_within` (REDIS_SOCKET_TIMEOUT), or a listener
  that fails or closes, drops the copy; a new listener is started in the background, at most once
  per `retry_after`. The first read after `idle_after` without one drops the listener too
  (quietly), rather than read through what queued up meanwhile.
- No entry is used more than `seconds` after it was read; at most `limit` entries (a full copy is
  emptied). A forked child starts with an empty copy and a listener of its own.

What it costs: a write that changes a copied entry waits a lease (CACHE_LOCAL_LEASE, 5 ms) before
it is acknowledged, once per write however many keys it changes (`SafeCache.publishing`), and the
copy answers only while reads come often enough to keep a PING answered within the lease: a
process that reads less often than that asks Redis, as without the copy.

Values are kept as Redis' bytes and decoded on each use, as a read from Redis would be: a caller
may change what it got without changing the copy.
"""

from __future__ import annotations

import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from core import outages

_CHANNEL = b"__redis__:invalidate"
OUTAGE = "the cache's invalidation messages"  # core.outages' component: logged once per outage

# (bytes, None) answered from the copy, or (None, the read's marks to `keep` its answer with, or None)
Looked = tuple[bytes | None, dict[str, object] | None]


class LocalCopy:
    def __init__(
        self,
        *,
        connect: Callable[[], Any],
        prefixes: Sequence[str],
        seconds: float,
        limit: int,
        retry_after: float,
        lease: float,
        ping_every: float,
        answer_within: float,
        idle_after: float = 10.0,
    ):
        """`connect()`: a new, unconnected redis-py Connection to the cache's Redis speaking RESP2 (the
        listener's); `prefixes`: the Redis key prefixes copied."""
        if not 0 < ping_every < lease:  # else the copy would stop answering between two PINGs
            raise ValueError(f"ping_every ({ping_every}) must be above 0 and below the lease ({lease})")
        self.prefixes = tuple(prefixes)
        self.lease = lease
        self.seconds = seconds
        self.limit = limit
        self.retry_after = retry_after
        self.ping_every = ping_every
        self.answer_within = answer_within
        self.idle_after = idle_after
        self._connect = connect
        self._entries: dict[str, tuple[bytes, float]] = {}  # Redis key -> (its bytes, monotonic end of use)
        self._marks: dict[str, object] = {}  # Redis key -> the mark of the one read that may keep its answer
        # Held to change `_entries`, `_marks` and the listener's state together, and to read the
        # listener's socket; never while connecting.
        self._lock = threading.Lock()
        self._connection: Any = None  # the listener
        self._listening: Any = None  # an epoll of the listener's socket, while it listens
        self.listener_id: int | None = None  # the listener's CLIENT ID, while it listens
        self._starting = False
        self._generation = 0  # moves when the listener is lost or closed
        self._retry_at = 0.0
        self._fresh_until = 0.0  # the copy may answer until then (monotonic)
        self._ping_at = 0.0  # when the next PING is due, or the unanswered one's deadline
        self._ping_sent: float | None = None  # when the unanswered PING was sent
        self._used_at = 0.0  # the last check of the listener by a read
        os.register_at_fork(after_in_child=partial(_forget_in_child, weakref.ref(self)))

    # -- reads ----------------------------------------------------------------------------------

    def lookup(self, key: str) -> Looked:
        """The key's bytes from the copy, or the mark its read from Redis is to be kept with (None:
        not to be kept, the copy is off for now)."""
        if not self._current():
            return None, None
        entry = self._entries.get(key)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0], None
        return None, self._mark((key,))

    def lookup_many(self, keys: Iterable[str]) -> tuple[dict[str, bytes] | None, dict[str, object] | None]:
        """Every key's bytes from the copy, or, when one is missing, the marks as `lookup`."""
        keys = tuple(keys)
        if not self._current():
            return None, None
        found, now, entries = {}, time.monotonic(), self._entries
        for key in keys:
            entry = entries.get(key)
            if entry is None or entry[1] <= now:
                return None, self._mark(keys)
            found[key] = entry[0]
        return found, None

    def _mark(self, keys: Iterable[str]) -> dict[str, object]:
        marks = self._marks
        if len(marks) > self.limit:  # reads that failed, or ended while the copy was off, leave theirs
            with self._lock:
                marks.clear()
        mine = {key: object() for key in keys if key.startswith(self.prefixes)}
        marks.update(mine)
        return mine

    def keep(self, values: dict[str, Any], marks: dict[str, object] | None) -> None:
        """Keep what a read marked with `marks` got from Redis (`values`: its answers found), for each
        key whose mark no message or write has removed meanwhile; with no values (the read failed),
        only forget its marks."""
        if not marks:
            return
        usable = bool(values) and self._current()
        with self._lock:
            entries, current = self._entries, self._marks
            if usable and len(entries) + len(marks) > self.limit:
                entries.clear()
            until = time.monotonic() + self.seconds
            for key, mark in marks.items():
                if current.get(key) is mark:
                    current.pop(key, None)
                    value = values.get(key)
                    if usable and type(value) is bytes:
                        entries[key] = (value, until)

    # -- writes and messages --------------------------------------------------------------------

    def drop(self, keys: Iterable[str]) -> None:
        """Forget these keys (a write of this process has changed them in Redis)."""
        if dropped := [key for key in keys if key.startswith(self.prefixes)]:
            with self._lock:
                self._forget(dropped)

    def drop_all(self) -> None:
        with self._lock:
            self._entries.clear()
            self._marks.clear()

    def _forget(self, keys: Iterable[str]) -> None:
        entries, marks = self._entries, self._marks
        for key in keys:
            entries.pop(key, None)
            marks.pop(key, None)

    # -- the listener ---------------------------------------------------------------------------

    def _current(self) -> bool:
        """Apply every message that has reached the process; False when the copy may not answer
        (no listener yet, none heard from recently enough)."""
        listening = self._listening
        if listening is None:
            self._start()
            return False
        now = time.monotonic()
        if now >= self._ping_at or now >= self._fresh_until:
            return self._heartbeat(listening, now)
        try:
            arrived = listening.poll(0)
        except (OSError, ValueError):  # closed by another thread meanwhile
            return False
        if not arrived and not self._lock.locked():  # nothing arrived, and no other thread applying
            return True
        with self._lock:
            return self._listening is listening and self._drain() and time.monotonic() < self._fresh_until

    def _heartbeat(self, listening: Any, now: float) -> bool:
        with self._lock:
            if self._listening is not listening:
                return False
            now = time.monotonic()  # the lock may have been waited for
            if now - self._used_at > self.idle_after:  # what queued meanwhile is not worth reading
                self._lose(None)
                return False
            self._used_at = now
            if not self._drain():
                return False
            if self._ping_sent is not None:
                if now - self._ping_sent > self.answer_within:
                    self._lose(f"Redis did not answer a PING within {self.answer_within} s")
                    return False
            elif now >= self._ping_at:
                try:
                    self._connection.send_command("PING")
                except Exception as e:
                    self._lose(f"sending a PING failed: {e}")
                    return False
                self._ping_sent, self._ping_at = now, now + self.answer_within
            return time.monotonic() < self._fresh_until  # draining took time

    def _drain(self) -> bool:
        """Apply what the listener has received, with `_lock` held; False if that lost it."""
        connection = self._connection
        try:
            while connection.can_read(0):  # what its parser has buffered, then its socket
                self._apply(connection.read_response())
        except Exception as e:
            self._lose(f"reading them failed: {e}")
            return False
        return True

    def _apply(self, message: Any) -> None:
        if isinstance(message, list) and len(message) == 3 and message[0] == b"message" and message[1] == _CHANNEL:
            keys = message[2]
            if isinstance(keys, list):
                self._forget(key.decode(errors="replace") if isinstance(key, bytes) else key for key in keys)
                return
        sent = self._ping_sent
        if message == [b"pong", b""] and sent is not None:  # a subscribed connection's PONG
            self._fresh_until = sent + self.lease
            self._ping_sent, self._ping_at = None, sent + self.ping_every
            return
        self._entries.clear()  # a flush (no keys), or something this code does not know: everything
        self._marks.clear()

    def _start(self) -> None:
        """Start a listener in the background (reads go to Redis meanwhile), at most once per
        `retry_after` after a failure."""
        if self._starting or time.monotonic() < self._retry_at:
            return
        with self._lock:
            if self._starting or self._listening is not None:
                return
            self._starting = True
            generation = self._generation
        try:
            threading.Thread(target=self._listen, args=(generation,), name="cache-copy-listener", daemon=True).start()
        except RuntimeError as e:  # no thread to be had (the process's limit, or it is shutting down)
            with self._lock:
                self._starting, self._retry_at = False, time.monotonic() + self.retry_after
            outages.unavailable(OUTAGE, f"{OUTAGE} failed to start ({e}); this process's copy of cached reads is off")

    def _listen(self, generation: int) -> None:
        connection: Any = None
        try:
            connection = self._connect()
            connection.connect()
            connection.send_command("CLIENT", "ID")
            own_id = connection.read_response()
            asked = time.monotonic()
            prefixes = [word for prefix in self.prefixes for word in ("PREFIX", prefix)]
            connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", *prefixes)
            connection.read_response()
            connection.send_command("SUBSCRIBE", _CHANNEL)
            connection.read_response()
            listening = select.epoll()  # thread-safe, unlike a poll() object; any fd number
            listening.register(connection._sock.fileno(), select.EPOLLIN)  # redis-py's socket
        except Exception as e:
            if connection is not None:
                connection.disconnect()
            with self._lock:
                if self._generation == generation:  # else a close() already ended this start
                    self._starting, self._retry_at = False, time.monotonic() + self.retry_after
            outages.unavailable(OUTAGE, f"{OUTAGE} failed to start ({e}); this process's copy of cached reads is off")
            return
        now = time.monotonic()
        with self._lock:
            if self._generation != generation:  # closed or lost meanwhile: this start is void
                listening.close()
                connection.disconnect()
                return
            self._entries.clear()  # nothing kept before the listener listened can be trusted
            self._marks.clear()
            self._connection, self._listening, self.listener_id = connection, listening, own_id
            self._fresh_until = asked + self.lease
            self._ping_at, self._ping_sent, self._used_at = asked + self.ping_every, None, now
            self._starting = False
        outages.available(OUTAGE)

    def close(self) -> None:
        """Stop listening and forget the copy (the next read starts again)."""
        with self._lock:
            self._lose(None)

    def _lose(self, why: str | None) -> None:
        """Drop the copy and the listener, with `_lock` held; `why` (a failure) is logged once per
        outage and delays the next start by `retry_after`."""
        listening, connection = self._listening, self._connection
        self._listening, self._connection, self.listener_id = None, None, None
        self._generation += 1  # a start in flight will not install its listener
        self._starting = False
        self._entries.clear()
        self._marks.clear()
        self._retry_at = 0.0 if why is None else time.monotonic() + self.retry_after
        if listening is not None:
            listening.close()
        if connection is not None:
            connection.disconnect()
        if why is not None:
            outages.unavailable(OUTAGE, f"{OUTAGE} stopped ({why}); this process's copy of cached reads is off")

    def forget_in_child(self) -> None:
        # The parent's listener is the parent's: closed here without a shutdown of the socket
        # (redis-py shuts down only in the process that connected), the child makes its own.
        self._lock = threading.Lock()
        listening, connection = self._listening, self._connection
        self._listening, self._connection, self.listener_id = None, None, None
        self._entries, self._marks = {}, {}
        self._starting, self._retry_at = False, 0.0
        if listening is not None:
            listening.close()
        if connection is not None:
            connection.disconnect()


def _forget_in_child(copy: weakref.ref[LocalCopy]) -> None:
    # A weak reference: the registration, which lasts the process's life, must not keep a copy alive.
    if (alive := copy()) is not None:
        alive.forget_in_child()


_shared: dict[tuple[Any, ...], LocalCopy] = {}
_shared_lock = threading.Lock()


def _new_shared_lock() -> None:
    global _shared_lock
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_shared_lock)


def shared_copy(key: tuple[Any, ...], make: Callable[[], LocalCopy]) -> LocalCopy:
    """The process's one copy for `key` (a cache's server, key prefix and options), made once."""
    copy = _shared.get(key)
    if copy is None:
        with _shared_lock:
            copy = _shared.get(key)
            if copy is None:
                copy = _shared[key] = make()
    return copy
