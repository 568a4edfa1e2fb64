"""Live task events (docs/events.md): one event per committed change, streamed to every protocol.

Publishing. The services call `publish_on_commit` inside the transaction of a write; the event is
appended to the event log (core.eventlog) once that transaction commits — never before, and never for
a write that rolled back. Adapters never publish.

Subscribing. An adapter opens a `Subscription` with `subscribe` and takes events from it (`next` on a
thread, `anext` on an event loop) until it raises: the subscription applies the task list's
visibility (own tasks; every task for managers) and the client's filters, replays what the client
missed after the id it resumes from, keeps at most EVENTS_BUFFER events for a slow client (past that,
the stream ends with SlowConsumer), and ends when the credential expires or is revoked, or when the
process shuts down (`shutdown`).

One `_Hub` thread per process follows the log and hands each entry to the subscriptions that may see
it, found by owner: a write costs the hub nothing per subscriber of other users.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core import eventlog, outages
from core.auth import Credential
from core.errors import (
    ApplicationError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
    SlowConsumer,
    TooManyStreams,
)
from core.types import Actor
from observability import metrics
from tasks.filters import TaskFilter, normalize_filters
from tasks.idempotency import task_from_snapshot, task_to_snapshot
from tasks.models import Status, Task

logger = logging.getLogger(__name__)

# Entries read from the log at a time (catching up, or by the hub).
_PAGE = 500

# What `EventFilter.admits` reads of an event's state: an entry without them cannot be read.
_FILTERED = frozenset({"status", "priority", "tags"})


class EventType(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    COMPLETED = "completed"  # an update that moved the task into status `completed`
    DELETED = "deleted"
    # Events after the id the client resumed from are no longer in the log, or may have been lost
    # (the log was unreachable): re-read with a list. The stream goes on from this event's id.
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One change of one task, as every protocol shows it.

    `id` orders the log and is the token a client resumes after. Per task, `version` orders the
    changes (two writers' events may reach the log in either order; a client keeps the higher version).
    `task` is the task after the change; None for `deleted` and `gap`.
    """

    id: str
    type: EventType
    task_id: UUID | None
    owner_id: int | None
    version: int | None
    occurred_at: datetime
    task: Task | None
    # What filters look at: the task after the change, or before it for a delete.
    _state: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def gap(cls, position: str) -> TaskEvent:
        return cls(position, EventType.GAP, None, None, None, timezone.now(), None)

    @classmethod
    def from_entry(cls, entry: eventlog.Entry) -> TaskEvent:
        data = entry.data
        kind = EventType(data["type"])
        occurred_at = parse_datetime(data["occurred_at"]) or timezone.now()
        if kind == EventType.GAP:
            return cls(entry.id, kind, None, None, None, occurred_at, None)
        state = data["task"]
        if not isinstance(state, dict) or not state.keys() >= _FILTERED:
            raise ValueError("the task's state lacks what the filters read")
        return cls(
            id=entry.id,
            type=kind,
            task_id=UUID(data["task_id"]),
            owner_id=int(data["owner_id"]),
            version=int(data["version"]),
            occurred_at=occurred_at,
            task=None if kind == EventType.DELETED else task_from_snapshot(state),
            _state=state,
        )


# -- publishing ---------------------------------------------------------------------------------------


def publish_on_commit(kind: EventType, task: Task) -> None:
    """Append the event of this change to the log when the current transaction commits.

    The task's state is copied now: a later change of the same instance in this transaction cannot
    alter what this event says.
    """
    if not settings.EVENTS_ENABLED:
        return
    data = {
        "type": kind.value,
        "task_id": str(task.pk),
        "owner_id": task.owner_id,
        "version": task.version,
        "task": task_to_snapshot(task),
    }
    transaction.on_commit(lambda: _append(data))


def _append(data: dict[str, Any]) -> None:
    data["occurred_at"] = timezone.now().isoformat()
    try:
        eventlog.event_log().append(data)
    except Exception as exc:  # the write committed: it must not fail because its event could not be told
        metrics.count_published(failed=True)
        outages.unavailable(
            "event log", "The event log did not take an event; every stream will be sent a gap.", exc_info=exc
        )
        _gap_marker.needed()
    else:
        metrics.count_published()
        outages.available("event log")


class _GapMarker:
    """After the log refused an event, append a `gap` entry as soon as it answers again: every
    subscriber of every process then learns that events may be missing, and re-reads."""

    RETRY = 0.5

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def needed(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="events-gap-marker", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                eventlog.event_log().append({"type": EventType.GAP.value, "occurred_at": timezone.now().isoformat()})
            except Exception:
                time.sleep(self.RETRY)
            else:
                outages.available("event log")
                return


_gap_marker = _GapMarker()


# -- subscribing --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The filters a subscriber may give: those of the task list that a single change can be held
    against (status, priority, tag), and `mine` (only the subscriber's own tasks, for managers)."""

    status: str | None = None
    priority: int | None = None
    tag: str | None = None
    mine: bool = False

    def admits(self, event: TaskEvent) -> bool:
        state = event._state
        if state is None:
            return True
        if self.status is not None and state["status"] != self.status:
            return False
        if self.priority is not None and state["priority"] != self.priority:
            return False
        return self.tag is None or self.tag in state["tags"]


def event_filter(
    *, status: str | None = None, priority: str | None = None, tag: str | None = None, mine: bool = False
) -> EventFilter:
    """Check the filters by the task list's rules (tasks.filters): InvalidInput with the same messages."""
    values = normalize_filters({"status": status, "priority": priority, "tag": tag})
    form = TaskFilter(values, queryset=Task.objects.none()).form
    if not form.is_valid():
        raise InvalidInput.for_fields({name: list(messages) for name, messages in form.errors.items()})
    cleaned = form.cleaned_data
    return EventFilter(
        status=cleaned.get("status") or None,
        priority=int(cleaned["priority"]) if cleaned.get("priority") not in (None, "") else None,
        tag=cleaned["tag"].lower() if cleaned.get("tag") else None,
        mine=mine,
    )


class Subscription:
    """One client's stream of events. Not shared between clients; `next`/`anext` from one consumer."""

    def __init__(
        self, *, actor: Actor, credential: Credential, filters: EventFilter, position: str, protocol: str
    ) -> None:
        self.actor = actor
        self.protocol = protocol
        self.last_id = position
        self._credential = credential
        self._filters = filters
        self._watches_all = actor.sees_all and not filters.mine
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: deque[TaskEvent] = deque()
        self._catching_up = True  # until the log holds nothing after last_id that was not handed out
        self._ended: ApplicationError | None = None
        self._ended_reason = ""
        self._closed = False
        self._attached = True  # holds its slot, and the hub offers it events (subscribe added it)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        # The first wait re-checks: a websocket's later subscriptions reuse the credential of its
        # connection_init, which may have been revoked since.
        self._rechecked = -math.inf

    # -- the hub's side (its thread) --

    def offer(self, event: TaskEvent) -> None:
        if event.type != EventType.GAP and not self._filters.admits(event):
            return
        with self._lock:
            if self._ended is not None or self._catching_up:
                return  # catching up reads everything up to the log's end itself
            if event.type != EventType.GAP and eventlog.parse_id(event.id) <= eventlog.parse_id(self.last_id):
                return  # handed out already (the hub re-reads a log it switched to from its start)
            if len(self._queue) >= settings.EVENTS_BUFFER:
                self._end(SlowConsumer(), "slow_consumer")
                return
            self._queue.append(event)
            self._wake()

    def end(self, error: ApplicationError, reason: str) -> None:
        with self._lock:
            self._end(error, reason)

    def _end(self, error: ApplicationError, reason: str) -> None:
        if self._ended is None:
            self._ended, self._ended_reason = error, reason
            self._queue.clear()
            self._wake()

    def _wake(self) -> None:
        self._ready.notify_all()
        for loop, ready in self._waiters:
            with contextlib.suppress(RuntimeError):  # the loop is closed: its consumer is gone
                loop.call_soon_threadsafe(ready.set)

    # -- the consumer's side --

    def next(self, timeout: float) -> list[TaskEvent]:
        """The next events (oldest first), or [] after `timeout` seconds without any.

        Raises the ApplicationError that ended the stream: NotAuthenticated, SlowConsumer,
        ServiceUnavailable.
        """
        timeout = self._check_credential(timeout)  # first: a revoked credential is replayed nothing
        if self._catching_up:
            with self._lock:
                if self._ended is not None:
                    raise self._ended
            return self._catch_up()
        with self._lock:
            if not self._queue and self._ended is None:
                self._ready.wait(timeout)
            return self._take()

    async def anext(self, timeout: float) -> list[TaskEvent]:
        """`next` for an event loop: the waits do not block the loop (reads of the log and
        credential checks run on a worker thread)."""
        if self._catching_up or time.monotonic() - self._rechecked >= settings.EVENTS_REAUTH_INTERVAL:
            return await asyncio.to_thread(self.next, 0)
        timeout = self._check_credential(timeout, recheck=False)  # a recheck may query: not on the loop
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        with self._lock:
            if self._queue or self._ended is not None:
                return self._take()
            self._waiters.append((loop, ready))
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.remove((loop, ready))
        with self._lock:
            return self._take()

    def _take(self) -> list[TaskEvent]:
        """Under the lock: the queued events newer than last_id, or the end."""
        if self._ended is not None:
            raise self._ended
        events: list[TaskEvent] = []
        last = eventlog.parse_id(self.last_id)
        while self._queue:
            event = self._queue.popleft()
            key = eventlog.parse_id(event.id)
            if event.type == EventType.GAP and key <= last:
                events.append(TaskEvent.gap(self.last_id if not events else events[-1].id))
            elif key > last:  # the hub may offer what catching up already read
                events.append(event)
                last = key
        if events:
            self.last_id = events[-1].id
            metrics.count_delivered(self.protocol, len(events))
        return events

    def _catch_up(self) -> list[TaskEvent]:
        """Events the log holds after last_id, a page at a time; once a page comes back short, the
        hub's offers are taken, and one more read covers what was appended meanwhile."""
        log = eventlog.event_log()
        events: list[TaskEvent] = []
        start = self.last_id
        try:
            try:
                entries = log.read_after(start, _PAGE)
            except eventlog.Gap as gap:
                events.append(TaskEvent.gap(gap.position))
                start = gap.position
                entries = log.read_after(start, _PAGE)
            if len(entries) < _PAGE:
                with self._lock:
                    self._catching_up = False
                entries += log.read_after(entries[-1].id if entries else start, _PAGE)
        except Exception as exc:
            raise ServiceUnavailable("The event log cannot be read.") from exc
        position = eventlog.parse_id(start)
        for entry in entries:
            event = _decode(entry)
            if event is not None and eventlog.parse_id(event.id) > position and self._sees(event):
                events.append(event)
        with self._lock:
            if self._ended is not None:
                raise self._ended
            # Past the events this client may not see too: they are not read again.
            self.last_id = entries[-1].id if entries else start
            if events:
                metrics.count_delivered(self.protocol, len(events))
        return events

    def _sees(self, event: TaskEvent) -> bool:
        if event.type == EventType.GAP:
            return True
        if event.owner_id != self.actor.id and not self._watches_all:
            return False
        return self._filters.admits(event)

    def _check_credential(self, timeout: float, *, recheck: bool = True) -> float:
        """End the stream if the credential expired, or if, checked again every
        EVENTS_REAUTH_INTERVAL, it was revoked or no longer gives the access the stream was opened
        with (a manager demoted); else the timeout, shortened to the next check and to the expiry."""
        now = time.monotonic()
        if recheck and now - self._rechecked >= settings.EVENTS_REAUTH_INTERVAL:
            self._rechecked = now
            try:
                self._credential.recheck(self.actor)
            except NotAuthenticated as exc:
                self.end(NotAuthenticated(f"{exc.message} The stream is closed."), "credential")
            except Exception:  # the database or cache is down: the credential stands until the next check
                logger.warning("A stream's credential could not be checked again; it is tried later.", exc_info=True)
            finally:
                _close_broken_connections()
        # Wake for the next check even on an idle stream: a revoked key ends its stream in time.
        timeout = min(timeout, max(settings.EVENTS_REAUTH_INTERVAL - (now - self._rechecked), 0.01))
        expires_at = self._credential.expires_at
        if expires_at is not None:
            left = expires_at - time.time()
            if left <= 0:
                self.end(NotAuthenticated("The credential has expired. The stream is closed."), "credential")
            timeout = min(timeout, max(left, 0))
        return max(timeout, 0)

    def detach(self) -> None:
        """Give the slot back until `attach()`, for an adapter whose server may drop the subscription's
        owner without closing it (Django's ASGI handler drops the response of a client that left while
        the view ran, in a reference cycle): a detached subscription holds nothing, so dropping it
        frees everything at once. `attach` catches up from where it was."""
        if self._attached and not self._closed:
            self._attached = False
            _hub.remove(self)
            metrics.count_stream(self.protocol, -1)

    def attach(self) -> None:
        """Take a slot again after `detach()`. Raises TooManyStreams (the streams opened meanwhile
        took the last one), ServiceUnavailable (the server is shutting down)."""
        if not self._attached and not self._closed:
            _hub.add(self)
            self._attached = True
            metrics.count_stream(self.protocol, 1)

    def close(self) -> None:
        """The client is gone (or the adapter is done): free the slot. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._attached:
            return  # detached: it holds nothing, and streamed nothing since
        _hub.remove(self)
        metrics.count_stream(self.protocol, -1)
        metrics.count_stream_ended(self.protocol, self._ended_reason or "client_closed")

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def subscribe(
    *,
    actor: Actor,
    credential: Credential,
    filters: EventFilter | None = None,
    after: str | None = None,
    protocol: str,
) -> Subscription:
    """Open a stream of the events `actor` may see, matching `filters`: after the event `after` (the
    last one the client saw; every later one is delivered first, once, in order), or from now on.

    Raises InvalidInput (`after` is not an event id), TooManyStreams, NotFound (events switched off).
    """
    if not settings.EVENTS_ENABLED:
        raise NotFound("Live events are switched off on this server (EVENTS_ENABLED).")
    if after is not None:
        try:
            eventlog.parse_id(after)
        except ValueError:
            raise InvalidInput.for_fields(
                {"after": ["Not an event id: give the `id` of an event you received."]}
            ) from None
        position = after
    else:
        try:
            position = eventlog.event_log().position()
        except Exception as exc:
            raise ServiceUnavailable("The event log cannot be read.") from exc
    subscription = Subscription(
        actor=actor, credential=credential, filters=filters or EventFilter(), position=position, protocol=protocol
    )
    _hub.add(subscription)
    metrics.count_stream(protocol, 1)
    return subscription


def shutdown() -> None:
    """End every stream of this process with ServiceUnavailable (the server is stopping), and refuse
    new ones the same way: clients reconnect, elsewhere, after the last id they received."""
    _hub.close(ServiceUnavailable("The server is shutting down: reconnect with the last event id you received."))


def reopen() -> None:
    """Take streams again after `shutdown` (a process that stops a server and starts another: tests)."""
    _hub.reopen()


def open_streams() -> int:
    return _hub.count()


class _Hub:
    """Follows the log on one daemon thread (started with the first subscription) and offers each
    entry to the subscriptions of the task's owner and to those that watch every task."""

    RETRY = 0.5

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_owner: dict[int, set[Subscription]] = {}
        self._all: set[Subscription] = set()
        self._count = 0
        self._per_user: dict[int, int] = {}
        self._thread: threading.Thread | None = None
        self._closing: ServiceUnavailable | None = None
        self.failing = False  # the log could not be read: every stream gets a gap once it can
        # Where the hub is in the log, kept here so that a hub started again (its thread died) goes
        # on from there: the streams get what was appended meanwhile, or a gap if it is gone.
        self._following: eventlog.EventLog | None = None
        self._position: str | None = None
        self._restarted = False

    def add(self, subscription: Subscription) -> None:
        user = subscription.actor.id
        with self._lock:
            if self._closing is not None:
                raise self._closing
            if self._count >= settings.EVENTS_MAX_STREAMS:
                raise TooManyStreams("This server has as many event streams open as it takes; try again later.")
            if self._per_user.get(user, 0) >= settings.EVENTS_MAX_STREAMS_PER_USER:
                limit = settings.EVENTS_MAX_STREAMS_PER_USER
                raise TooManyStreams(f"You have {limit} event streams open on this server; close one first.")
            self._count += 1
            self._per_user[user] = self._per_user.get(user, 0) + 1
            if subscription._watches_all:
                self._all.add(subscription)
            else:
                self._by_owner.setdefault(user, set()).add(subscription)
            if self._thread is None or not self._thread.is_alive():
                self._restarted = self._thread is not None
                if self._following is None:
                    self._start_position()
                self._thread = threading.Thread(target=self._run, name="events-hub", daemon=True)
                self._thread.start()

    def _start_position(self) -> None:
        """Where the first hub starts, read before the subscription that starts it can catch up:
        read later, by the hub's thread, it could be past events appended after that catch-up,
        which no stream would get. The thread reads it itself if the log does not answer."""
        log = eventlog.event_log()
        try:
            self._position, self._following = log.position(), log
        except Exception:
            self._position = None

    def remove(self, subscription: Subscription) -> None:
        user = subscription.actor.id
        with self._lock:
            if subscription in self._all:
                self._all.discard(subscription)
            elif subscription in self._by_owner.get(user, ()):
                self._by_owner[user].discard(subscription)
                if not self._by_owner[user]:
                    del self._by_owner[user]
            else:
                return
            self._count -= 1
            self._per_user[user] -= 1
            if not self._per_user[user]:
                del self._per_user[user]

    def count(self) -> int:
        with self._lock:
            return self._count

    def close(self, error: ServiceUnavailable) -> None:
        with self._lock:
            self._closing = error
        for subscription in self._everyone():
            subscription.end(error, "shutdown")

    def reopen(self) -> None:
        with self._lock:
            self._closing = None

    def _everyone(self) -> list[Subscription]:
        with self._lock:
            return [*self._all, *(s for group in self._by_owner.values() for s in group)]

    def _run(self) -> None:
        # Nothing that goes wrong here may end the loop: every stream of the process depends on it.
        while True:
            try:
                self._follow()
            except Exception:  # a bug: logged; the hub goes on after the last entry it handled
                logger.exception("The events hub failed; it goes on after event %s.", self._position)
                time.sleep(self.RETRY)

    def _follow(self) -> None:
        """Wait for the next entries of the log (up to a second) and hand them to the streams."""
        log = eventlog.event_log()
        if log is not self._following:
            # Another log (its settings changed: tests): read it from its start, as events may have
            # been appended before the hub came back from waiting on the old one; the streams skip
            # what they already have.
            self._position = None if self._following is None else eventlog.START
            self._following, self.failing, self._restarted = log, False, False
        try:
            if self._position is None:
                self._position = log.position()
            entries = self._after_restart(log) if self._restarted else log.wait(self._position, 1.0, _PAGE)
        except Exception:
            if not self.failing:
                logger.warning("The event log cannot be read; streams wait for it.", exc_info=True)
            self.failing = True
            time.sleep(self.RETRY)
            return
        if self.failing:
            # Entries appended while the log could not be read were kept (they are read now), but
            # a log that was lost (Redis restarted empty) cannot say what it lost: tell everyone.
            self.failing = False
            logger.info("The event log can be read again; every stream is sent a gap.")
            self._offer_gap(self._position)
        for entry in entries:
            if (event := _decode(entry)) is not None:
                try:
                    self._dispatch(event)
                except Exception:  # a bug: logged, and the other events still flow
                    logger.exception("Event %s could not be handed to the streams.", entry.id)
            self._position = entry.id  # once handled: a hub started again offers it again

    def _after_restart(self, log: eventlog.EventLog) -> list[eventlog.Entry]:
        """The first read of a hub whose thread died: what was appended since its position, checked
        for a gap (entries trimmed while no hub ran), which every stream is then sent."""
        position = self._position or eventlog.START
        try:
            entries = log.read_after(position, _PAGE)
        except eventlog.Gap as gap:
            logger.warning("The events hub started again past the log's retention; every stream is sent a gap.")
            self._position = gap.position
            self._offer_gap(gap.position)
            entries = []
        self._restarted = False
        return entries

    def _offer_gap(self, position: str) -> None:
        for subscription in self._everyone():
            subscription.offer(TaskEvent.gap(position))

    def _dispatch(self, event: TaskEvent) -> None:
        with self._lock:
            if event.type == EventType.GAP:
                targets = [*self._all, *(s for group in self._by_owner.values() for s in group)]
            else:
                targets = [*self._all, *self._by_owner.get(event.owner_id or 0, ())]
        for subscription in targets:
            subscription.offer(event)


_hub = _Hub()


def _close_broken_connections() -> None:
    """Close this thread's database connections that broke or outlived CONN_MAX_AGE, as Django does
    between requests: a stream's thread (an executor's, a gRPC call's) has no request to end. Never
    one in a transaction."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _decode(entry: eventlog.Entry) -> TaskEvent | None:
    """The event of a log entry; None (logged, skipped) for one this release cannot read, whatever
    the reason — a newer release's event type or task format during a rolling deploy, an entry written
    by something else — must not stop the streams, nor a resume from before it."""
    try:
        return TaskEvent.from_entry(entry)
    except Exception:
        logger.error("Event log entry %s cannot be read; skipped.", entry.id, exc_info=True)
        return None


def change_type(task: Task, changed: set[str]) -> EventType:
    """`completed` when the change moved the task into status completed, else `updated`."""
    return EventType.COMPLETED if "status" in changed and task.status == Status.COMPLETED else EventType.UPDATED
