"""The event log: an append-only, bounded sequence of JSON entries with orderable ids (docs/events.md).

With `REDIS_URL` the log is a Redis Stream (`EVENTS_STREAM_KEY`) that every process appends to and
reads from, so a subscriber on any replica sees a write made on any other. Without it (the embedded
default) it is a list in this process's memory, with the same interface: a subscriber then sees only
the writes of its own process.

Ids are Redis Stream ids, `<milliseconds>-<sequence>`, on both: they order the log, and a client
resumes "after" the last one it saw. The log keeps about `EVENTS_RETENTION` entries; `read_after` an id
whose successors may be gone raises `Gap`, so a client is never handed a silent hole.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)

# ASCII digits only: `\d` also takes other scripts' digits (full-width ones), which int() reads but
# Redis refuses.
_ID = re.compile(r"([0-9]{1,19})-([0-9]{1,19})")
START = "0-0"


def parse_id(value: str) -> tuple[int, int]:
    """The (milliseconds, sequence) of an event id; ValueError for anything else."""
    match = _ID.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not an event id: {value!r}")
    return int(match[1]), int(match[2])


def _format(key: tuple[int, int]) -> str:
    return f"{key[0]}-{key[1]}"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    data: dict[str, Any]


class Gap(Exception):
    """Entries after the id asked for may be gone (trimmed, or lost with the log): re-read the state,
    then follow the log from `position`, its newest id."""

    def __init__(self, position: str) -> None:
        super().__init__(position)
        self.position = position


class EventLog(Protocol):
    def append(self, data: Mapping[str, Any]) -> str:
        """Add an entry; its id. Raises on a failure of the store."""

    def position(self) -> str:
        """The id of the newest entry (START for an empty log)."""

    def read_after(self, after: str, count: int) -> list[Entry]:
        """Up to `count` entries with ids greater than `after`, oldest first. Raises Gap."""

    def wait(self, after: str, timeout: float, count: int) -> list[Entry]:
        """Entries after `after` (no gap check), waiting up to `timeout` seconds for one."""


class MemoryLog:
    """The log of a single process: a bounded deque guarded by a condition."""

    def __init__(self, retention: int) -> None:
        self._entries: deque[tuple[tuple[int, int], Entry]] = deque()
        self._retention = max(1, retention)
        self._changed = threading.Condition()
        # Ids from before this log existed (an earlier process) were never in it.
        self._origin = (int(time.time() * 1000), 0)
        self._last = self._origin
        self._dropped: tuple[int, int] | None = None  # the newest id trimmed away

    def append(self, data: Mapping[str, Any]) -> str:
        with self._changed:
            now = int(time.time() * 1000)
            key = (now, 0) if now > self._last[0] else (self._last[0], self._last[1] + 1)
            entry = Entry(_format(key), dict(data))
            self._entries.append((key, entry))
            self._last = key
            while len(self._entries) > self._retention:
                self._dropped = self._entries.popleft()[0]
            self._changed.notify_all()
            return entry.id

    def position(self) -> str:
        with self._changed:
            return _format(self._last)

    def read_after(self, after: str, count: int) -> list[Entry]:
        key = parse_id(after)
        with self._changed:
            before_origin = key < self._origin and key != (0, 0)  # START: from the beginning
            if before_origin or key > self._last or (self._dropped is not None and key < self._dropped):
                raise Gap(_format(self._last))
            return self._after(key, count)

    def wait(self, after: str, timeout: float, count: int) -> list[Entry]:
        key = parse_id(after)
        with self._changed:
            if self._last <= key:
                self._changed.wait(timeout)
            return self._after(key, count)

    def _after(self, key: tuple[int, int], count: int) -> list[Entry]:
        found: list[Entry] = []
        for entry_key, entry in reversed(self._entries):  # the tail is what readers want
            if entry_key <= key:
                break
            found.append(entry)
        found.reverse()
        return found[:count]


class RedisStreamLog:
    """The log shared by every process: one Redis Stream, trimmed with `XADD … MAXLEN ~`.

    Appends use short socket timeouts (they run on a request's thread, after its commit); the hub's
    blocking reads use a client of their own whose timeout outlasts the block.
    """

    BLOCK = 1.0

    def __init__(self, url: str, key: str, retention: int) -> None:
        self._key = key
        self._retention = max(1, retention)
        # Typed Any: redis-py's reply types depend on decode_responses, which its stubs cannot follow.
        self._writer: Any = redis.Redis.from_url(
            url,
            socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            decode_responses=True,
        )
        self._reader: Any = redis.Redis.from_url(
            url,
            socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
            socket_timeout=self.BLOCK + 2.0,
            decode_responses=True,
        )

    def append(self, data: Mapping[str, Any]) -> str:
        entry_id: str = self._writer.xadd(
            self._key, {"data": json.dumps(data, separators=(",", ":"))}, maxlen=self._retention, approximate=True
        )
        return entry_id

    def position(self) -> str:
        try:
            info = self._reader.xinfo_stream(self._key)
        except redis.ResponseError:  # no such key: nothing was ever appended (or the log was lost)
            return START
        return str(info["last-generated-id"])

    def read_after(self, after: str, count: int) -> list[Entry]:
        key = parse_id(after)
        # One transaction: a trim between the look at the stream's ends and the read would leave a
        # hole the look did not see.
        pipe = self._reader.pipeline(transaction=True)
        pipe.xinfo_stream(self._key)
        pipe.xrange(self._key, min=f"({after}", max="+", count=count)
        info, rows = pipe.execute(raise_on_error=False)
        if isinstance(rows, Exception):
            raise rows
        if isinstance(info, redis.ResponseError):  # no such key: nothing was ever appended (or the log was lost)
            info = None
        elif isinstance(info, Exception):
            raise info
        last = parse_id(str(info["last-generated-id"])) if info else (0, 0)
        first = parse_id(info["first-entry"][0]) if info and info.get("first-entry") else None
        trimmed = bool(info) and int(info["entries-added"]) > int(info["length"])
        # Trimming removes the oldest entries: with `after` inside [first, last] nothing after it is gone.
        # Before the first entry, entries after `after` may have been trimmed, or the stream lost and
        # made anew: a gap, even in the one case where nothing is missing (`after` was the entry just
        # before `first`). START is the beginning of a stream never trimmed.
        before_first = first is not None and key < first and (key != (0, 0) or trimmed)
        if key > last or before_first or (first is None and key != last):
            raise Gap(_format(last))
        return self._entries(rows)

    def wait(self, after: str, timeout: float, count: int) -> list[Entry]:
        parse_id(after)
        block = max(1, int(min(timeout, self.BLOCK) * 1000))
        reply = self._reader.xread({self._key: after}, count=count, block=block)
        return self._entries(reply[0][1]) if reply else []

    @staticmethod
    def _entries(rows: list[tuple[str, dict[str, str]]]) -> list[Entry]:
        """The entries of XRANGE/XREAD rows. A row that is not a JSON object (written by something
        else) keeps its place with empty data: readers skip it (tasks.events logs it) and go on past
        it, instead of failing at it on every read."""
        entries: list[Entry] = []
        for entry_id, fields in rows:
            try:
                data = json.loads(fields["data"])
            except (KeyError, TypeError, ValueError):
                logger.warning("Event log entry %s is not JSON; read as empty.", entry_id, exc_info=True)
                data = {}
            entries.append(Entry(entry_id, data if isinstance(data, dict) else {}))
        return entries


_log: EventLog | None = None
_log_lock = threading.Lock()


def event_log() -> EventLog:
    """This process's event log: the Redis Stream with REDIS_URL, else the in-process log."""
    global _log
    if _log is None:
        with _log_lock:
            if _log is None:
                if settings.REDIS_URL:
                    _log = RedisStreamLog(settings.REDIS_URL, settings.EVENTS_STREAM_KEY, settings.EVENTS_RETENTION)
                else:
                    _log = MemoryLog(settings.EVENTS_RETENTION)
    return _log


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    """Tests that override the log's settings get a log built from them."""
    global _log
    if setting in {"REDIS_URL", "EVENTS_STREAM_KEY", "EVENTS_RETENTION"}:
        _log = None
