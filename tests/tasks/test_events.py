"""The live events core (tasks.events, core.eventlog): publishing after commit, visibility, filters,
resume, gaps, the per-subscriber bound, limits, credential expiry and shutdown. On the embedded default
this runs the in-process log; with REDIS_URL the Redis Stream."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from core import eventlog
from core.auth import Credential, api_key_create, api_key_revoke, authenticate_stream
from core.errors import InvalidInput, NotAuthenticated, ServiceUnavailable, SlowConsumer, TooManyStreams
from core.types import Actor
from tasks import events
from tasks.events import EventType, TaskEvent
from tasks.models import Task
from tasks.services import task_create, task_delete, task_update
from tests.conftest import access_token
from tests.factories import actor_of
from tests.faults import private_redis, redis_stall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def opened() -> Iterator[Callable[..., events.Subscription]]:
    """subscribe(), closed at the end of the test whatever happens."""
    subscriptions: list[events.Subscription] = []

    def open_(actor: Actor, **options: Any) -> events.Subscription:
        if "credential" not in options:  # a real access token of the actor's user, as a client would send
            token = access_token(User.objects.get(pk=actor.id))
            options["credential"] = authenticate_stream(authorization=f"Bearer {token}", api_key=None)[1]
        credential = options.pop("credential")
        subscription = events.subscribe(actor=actor, credential=credential, protocol="rest", **options)
        subscriptions.append(subscription)
        return subscription

    yield open_
    for subscription in subscriptions:
        subscription.close()
    assert events.open_streams() == 0


def take(subscription: events.Subscription, count: int, timeout: float = 5.0) -> list[TaskEvent]:
    """Exactly `count` events (fails on fewer within `timeout`), then checks nothing more is pending."""
    got: list[TaskEvent] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += subscription.next(0.2)
    assert len(got) == count, got
    assert subscription.next(0.3) == []
    return got


def test_every_committed_write_is_one_event_with_the_task_after_it(user: Any, opened: Callable[..., Any]) -> None:
    actor = actor_of(user)
    stream = opened(actor)
    task = task_create(actor=actor, data={"title": "a", "tags": ["Home"]})
    task_update(actor=actor, task_id=task.pk, changes={"title": "b"})
    task_update(actor=actor, task_id=task.pk, changes={"title": "b"})  # changes nothing: no event
    task_update(actor=actor, task_id=task.pk, changes={"status": "completed"})
    task_delete(actor=actor, task_id=task.pk)

    got = take(stream, 4)
    assert [e.type for e in got] == [EventType.CREATED, EventType.UPDATED, EventType.COMPLETED, EventType.DELETED]
    assert [e.version for e in got] == [1, 2, 3, 3]
    assert {e.task_id for e in got} == {task.pk} and {e.owner_id for e in got} == {user.pk}
    assert got[1].task is not None and got[1].task.title == "b" and got[0].task.tags == ["home"]
    assert got[2].task is not None and got[2].task.completed
    assert got[3].task is None
    ids = [eventlog.parse_id(e.id) for e in got]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert stream.last_id == got[-1].id


def test_a_deleted_users_tasks_are_each_a_deleted_event(user: Any, manager: Any, opened: Callable[..., Any]) -> None:
    """The database deletes a user's tasks with them, past task_delete: each still tells its deletion."""
    actor = actor_of(user)
    tasks = [task_create(actor=actor, data={"title": title}) for title in ("a", "b")]
    stream = opened(actor_of(manager))

    user.delete()

    got = take(stream, 2)
    assert [e.type for e in got] == [EventType.DELETED] * 2
    assert {e.task_id for e in got} == {task.pk for task in tasks} and {e.owner_id for e in got} == {actor.id}


def test_nothing_is_published_before_the_commit_nor_for_a_rollback(user: Any, opened: Callable[..., Any]) -> None:
    actor = actor_of(user)
    stream = opened(actor)
    with pytest.raises(RuntimeError), transaction.atomic():
        task_create(actor=actor, data={"title": "rolled back"})
        raise RuntimeError
    with transaction.atomic():
        task_create(actor=actor, data={"title": "kept"})
        assert stream.next(0.3) == []  # not committed yet
    [event] = take(stream, 1)
    assert event.task is not None and event.task.title == "kept"


def test_a_subscriber_sees_only_what_the_task_list_shows_it(
    user: Any, other_user: Any, manager: Any, opened: Callable[..., Any]
) -> None:
    a, b, boss = actor_of(user), actor_of(other_user), actor_of(manager)
    stream_a, stream_b, stream_boss, boss_mine = (
        opened(a),
        opened(b),
        opened(boss),
        opened(boss, filters=events.event_filter(mine=True)),
    )
    task_create(actor=a, data={"title": "of a"})
    task_create(actor=boss, data={"title": "of the manager"})

    assert [e.task.title for e in take(stream_a, 1)] == ["of a"]
    assert take(stream_b, 0) == []
    assert [e.task.title for e in take(stream_boss, 2)] == ["of a", "of the manager"]
    assert [e.task.title for e in take(boss_mine, 1)] == ["of the manager"]


def test_filters_are_the_lists_and_are_checked_like_them(user: Any, opened: Callable[..., Any]) -> None:
    actor = actor_of(user)
    high = opened(actor, filters=events.event_filter(priority="high"))
    tagged = opened(actor, filters=events.event_filter(tag="Work", status="in_progress"))
    task_create(actor=actor, data={"title": "1", "priority": "high"})
    task_create(actor=actor, data={"title": "2", "tags": ["work"], "status": "in_progress"})
    task_create(actor=actor, data={"title": "3", "tags": ["work"]})
    assert [e.task.title for e in take(high, 1)] == ["1"]
    assert [e.task.title for e in take(tagged, 1)] == ["2"]

    with pytest.raises(InvalidInput) as caught:
        events.event_filter(status="done", priority="urgent", tag="")
    assert set(caught.value.extra["fields"]) == {"status", "priority", "tag"} or set(caught.value.extra["fields"]) == {
        "tag"
    }
    with pytest.raises(InvalidInput) as caught:
        events.event_filter(status="done")
    assert set(caught.value.extra["fields"]) == {"status"}
    with pytest.raises(InvalidInput) as caught:
        opened(actor, after="yesterday")
    assert set(caught.value.extra["fields"]) == {"after"}


def test_resuming_delivers_every_missed_event_once_in_order(user: Any, opened: Callable[..., Any]) -> None:
    actor = actor_of(user)
    first = opened(actor)
    task = task_create(actor=actor, data={"title": "seen"})
    [seen] = take(first, 1)
    first.close()  # the connection drops

    for title in ("m1", "m2", "m3"):
        task_update(actor=actor, task_id=task.pk, changes={"title": title})
    again = opened(actor, after=seen.id)
    task_update(actor=actor, task_id=task.pk, changes={"title": "live"})
    assert [e.task.title for e in take(again, 4)] == ["m1", "m2", "m3", "live"]


def test_resuming_from_an_id_older_than_the_retention_is_a_gap_then_the_stream_goes_on(
    user: Any, opened: Callable[..., Any]
) -> None:
    actor = actor_of(user)
    with override_settings(EVENTS_RETENTION=3, EVENTS_STREAM_KEY=f"test:events:{time.time_ns()}"):
        task = task_create(actor=actor, data={"title": "0"})
        probe = opened(actor, after=eventlog.START)
        [oldest, *_] = take(probe, 1) or [None]
        for n in range(1, 200):  # Redis trims whole nodes of ~100 entries with MAXLEN ~
            task_update(actor=actor, task_id=task.pk, changes={"title": str(n)})
        stream = opened(actor, after=oldest.id)
        got = stream.next(1)
        assert got[0].type == EventType.GAP and got[0].task is None
        assert eventlog.parse_id(got[0].id) >= eventlog.parse_id(oldest.id)
        task_update(actor=actor, task_id=task.pk, changes={"title": "after the gap"})
        rest = [e for e in got[1:] + take(stream, 1, timeout=3) if e.type != EventType.GAP]
        assert rest[-1].task.title == "after the gap"


def test_a_client_that_falls_behind_is_dropped_not_buffered(user: Any, opened: Callable[..., Any]) -> None:
    actor = actor_of(user)
    with override_settings(EVENTS_BUFFER=3):
        slow = opened(actor)
        slow.next(0)  # caught up: from now on the hub queues for it
        for n in range(6):
            task_create(actor=actor, data={"title": str(n)})
        # The client reads nothing while six events come: past three waiting, it is dropped.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.1)
            with slow._lock:
                if slow._ended is not None:
                    break
        with pytest.raises(SlowConsumer):
            slow.next(0)


def test_stream_limits_per_user_and_per_process(user: Any, other_user: Any, opened: Callable[..., Any]) -> None:
    with override_settings(EVENTS_MAX_STREAMS_PER_USER=2, EVENTS_MAX_STREAMS=3):
        opened(actor_of(user))
        opened(actor_of(user))
        with pytest.raises(TooManyStreams):
            opened(actor_of(user))
        opened(actor_of(other_user))
        with pytest.raises(TooManyStreams):
            opened(actor_of(other_user))


def test_an_expired_credential_ends_the_stream(user: Any, opened: Callable[..., Any]) -> None:
    actor, credential = authenticate_stream(authorization=f"Bearer {access_token(user)}", api_key=None)
    assert credential.expires_at is not None and credential.expires_at > time.time() + 60
    soon = Credential(credential.authorization, None, expires_at=time.time() + 0.5)
    stream = opened(actor, credential=soon)
    assert stream.next(0.1) == []
    with pytest.raises(NotAuthenticated, match="expired"):
        for _ in range(20):
            stream.next(0.2)


def test_a_revoked_api_key_ends_the_stream_at_the_next_check(user: Any, opened: Callable[..., Any]) -> None:
    key, raw = api_key_create(user=user, name="watch")
    actor, credential = authenticate_stream(authorization=None, api_key=raw)
    assert actor.id == user.pk and credential.expires_at is None
    with override_settings(EVENTS_REAUTH_INTERVAL=0.2):
        stream = opened(actor, credential=credential)
        stream.next(0.3)
        api_key_revoke(prefix=key.prefix)
        with pytest.raises(NotAuthenticated):
            for _ in range(20):
                stream.next(0.1)


def test_streams_need_a_credential() -> None:
    with pytest.raises(NotAuthenticated):
        authenticate_stream(authorization=None, api_key=None)


def test_shutdown_ends_every_stream_with_a_retryable_error(user: Any, opened: Callable[..., Any]) -> None:
    stream = opened(actor_of(user))
    stream.next(0)
    events.shutdown()
    with pytest.raises(ServiceUnavailable, match="reconnect"):
        stream.next(1)
    with pytest.raises(ServiceUnavailable):  # and no new one: a client that comes back goes elsewhere
        opened(actor_of(user))
    events.reopen()


def test_anext_waits_on_the_event_loop(user: Any, opened: Callable[..., Any]) -> None:
    actor = actor_of(user)
    stream = opened(actor)

    async def scenario() -> list[TaskEvent]:
        assert await stream.anext(0.1) == []  # catching up: nothing yet
        waiting = asyncio.ensure_future(stream.anext(5))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await asyncio.to_thread(task_create, actor=actor, data={"title": "pushed"})
        return await asyncio.wait_for(waiting, 5)

    # On a thread of its own: another test's fixture (Playwright) may keep a loop running on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        got = pool.submit(asyncio.run, scenario()).result(timeout=30)
    assert [e.task.title for e in got] == ["pushed"] and time.monotonic() - started < 3


@pytest.mark.redis
def test_two_processes_logs_share_the_stream_and_a_trimmed_id_is_a_gap() -> None:
    key = f"test:events:{time.time_ns()}"
    one = eventlog.RedisStreamLog(settings.REDIS_URL, key, retention=1)
    other = eventlog.RedisStreamLog(settings.REDIS_URL, key, retention=1)
    try:
        assert one.position() == eventlog.START
        first = one.append({"n": 1})
        assert [e.data for e in other.read_after(eventlog.START, 10)] == [{"n": 1}]
        assert other.wait(first, 0.05, 10) == []
        ids = [one.append({"n": n}) for n in range(2, 300)]
        assert other.position() == ids[-1]
        with pytest.raises(eventlog.Gap) as gap:
            other.read_after(first, 10)
        assert gap.value.position == ids[-1]
        assert [e.data for e in other.read_after(ids[-2], 10)] == [{"n": 299}]
        with pytest.raises(eventlog.Gap):
            other.read_after("99999999999999-0", 10)  # never given out
    finally:
        redis.Redis.from_url(settings.REDIS_URL).delete(key)


def test_the_memory_log_tells_a_gap_exactly() -> None:
    log = eventlog.MemoryLog(retention=2)
    ids = [log.append({"n": n}) for n in range(4)]
    assert [e.data["n"] for e in log.read_after(ids[1], 10)] == [2, 3]
    with pytest.raises(eventlog.Gap):
        log.read_after(ids[0], 10)
    with pytest.raises(eventlog.Gap):
        log.read_after("1-0", 10)  # before this log existed
    assert log.wait(ids[3], 0.05, 10) == []


def test_an_event_the_log_could_not_take_reaches_every_stream_as_a_gap(user: Any, opened: Callable[..., Any]) -> None:
    """Redis stalls: the write still commits, its append times out, and once Redis answers every
    stream (here, one on another "process": a log client of its own) is told events may be missing."""
    actor = actor_of(user)
    with private_redis() as url, override_settings(REDIS_URL=url):
        stream = opened(actor)
        assert stream.next(0) == []
        stall = redis_stall(url, 1.5)
        time.sleep(0.2)
        task = task_create(actor=actor, data={"title": "written during the stall"})
        assert Task.objects.filter(pk=task.pk).exists()
        stall.join(10)
        got: list[TaskEvent] = []
        deadline = time.monotonic() + 10
        while not any(e.type == EventType.GAP for e in got) and time.monotonic() < deadline:
            got += stream.next(0.2)
        assert any(e.type == EventType.GAP for e in got), got
        task_create(actor=actor, data={"title": "after"})
        later: list[TaskEvent] = []
        while not later and time.monotonic() < deadline:
            later = [e for e in stream.next(0.2) if e.type != EventType.GAP]
        assert [e.task.title for e in later if e.task and e.task.title == "after"] == ["after"]
        marker = events._gap_marker._thread  # its gap must land in this log, not a later test's
        assert marker is None or (marker.join(10) or not marker.is_alive())


def test_a_revoked_credential_is_replayed_nothing(user: Any, opened: Callable[..., Any]) -> None:
    """A websocket's later subscription reuses its connection_init credential: checked before any catch-up."""
    actor = actor_of(user)
    task_create(actor=actor, data={"title": "in the log"})
    key, raw = api_key_create(user=user, name="leaked")
    _, credential = authenticate_stream(authorization=None, api_key=raw)
    api_key_revoke(prefix=key.prefix)
    stream = opened(actor, credential=credential, after=eventlog.START)
    with pytest.raises(NotAuthenticated):
        stream.next(0)


def test_a_manager_demoted_loses_the_stream_of_everybodys_tasks(manager: Any, opened: Callable[..., Any]) -> None:
    from django.contrib.auth.models import Group
    from django.core.cache import cache

    _, raw = api_key_create(user=manager, name="boss")
    actor, credential = authenticate_stream(authorization=None, api_key=raw)
    assert actor.sees_all
    with override_settings(EVENTS_REAUTH_INTERVAL=0.2):
        stream = opened(actor, credential=credential)
        stream.next(0)
        manager.groups.remove(Group.objects.get(name="manager"))
        cache.clear()  # the API key's cached entry, as its TTL would
        with pytest.raises(NotAuthenticated, match="no longer gives"):
            for _ in range(20):
                stream.next(0.1)


def test_an_entry_this_release_cannot_read_is_skipped_and_the_streams_go_on(
    user: Any, opened: Callable[..., Any]
) -> None:
    actor = actor_of(user)
    stream = opened(actor)
    stream.next(0)
    eventlog.event_log().append({"type": "archived", "occurred_at": "2026-12-03T00:00:00+00:00"})  # a newer release's
    task_create(actor=actor, data={"title": "after it"})
    assert [e.task.title for e in take(stream, 1)] == ["after it"]
    resumed = opened(actor, after=eventlog.START if not settings.REDIS_URL else stream.last_id)
    assert all(e.type != "archived" for e in resumed.next(0))


def _titles(got: list[TaskEvent]) -> list[str]:
    return [e.task.title for e in got if e.task is not None]


@pytest.mark.parametrize(
    ("task", "filters"),
    [
        ({"title": "newer", "priority": "high"}, None),  # a newer release's format: a priority by name
        ({"title": "newer"}, {"status": "todo"}),  # without what a filter reads
    ],
)
def test_an_entry_whose_task_cannot_be_read_is_skipped_live_and_on_resume(
    user: Any, opened: Callable[..., Any], task: dict[str, Any], filters: dict[str, str] | None
) -> None:
    actor = actor_of(user)
    chosen = events.event_filter(**filters) if filters else None
    live = opened(actor, filters=chosen)
    assert live.next(0) == []
    start = live.last_id
    entry = {"type": "created", "task_id": str(uuid.uuid4()), "owner_id": user.pk, "version": 1}
    eventlog.event_log().append({**entry, "occurred_at": timezone.now().isoformat(), "task": task})
    task_create(actor=actor, data={"title": "after it"})

    assert _titles(take(live, 1)) == ["after it"]
    assert events._hub._thread is not None and events._hub._thread.is_alive()
    resumed = opened(actor, filters=chosen, after=start)  # from before it
    assert _titles(resumed.next(0)) == ["after it"]


@pytest.mark.redis
def test_a_log_entry_that_is_not_json_is_skipped_live_and_on_resume(user: Any, opened: Callable[..., Any]) -> None:
    actor = actor_of(user)
    live = opened(actor)
    assert live.next(0) == []
    start = live.last_id
    written_by_something_else = redis.Redis.from_url(settings.REDIS_URL)
    written_by_something_else.xadd(settings.EVENTS_STREAM_KEY, {"data": "{not json"})
    written_by_something_else.xadd(settings.EVENTS_STREAM_KEY, {"other": "field"})
    task_create(actor=actor, data={"title": "after them"})

    assert _titles(take(live, 1)) == ["after them"]
    resumed = opened(actor, after=start)
    assert _titles(resumed.next(0)) == ["after them"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_hub_started_again_goes_on_from_where_it_was(
    user: Any, opened: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing but a BaseException ends the hub's thread now; the next stream starts it again, and
    the open streams get every event appended while none ran."""
    actor = actor_of(user)
    live = opened(actor)
    assert live.next(0) == []
    task_create(actor=actor, data={"title": "handed out"})  # where the hub is: an entry the log holds
    assert _titles(take(live, 1)) == ["handed out"]
    dispatch = events._Hub._dispatch

    def end_the_thread(self: Any, event: TaskEvent) -> None:
        monkeypatch.setattr(events._Hub, "_dispatch", dispatch)
        raise SystemExit

    monkeypatch.setattr(events._Hub, "_dispatch", end_the_thread)
    task_create(actor=actor, data={"title": "ended the hub"})
    hub = events._hub._thread
    assert hub is not None
    hub.join(5)
    assert not hub.is_alive()
    task_create(actor=actor, data={"title": "while no hub ran"})
    opened(actor)  # starts the hub again

    assert _titles(take(live, 2)) == ["ended the hub", "while no hub ran"]


@pytest.mark.parametrize("after", ["\uff11-\uff10", "\u0661\u0662-\u0660", "1-\uff10"])  # full-width, Arabic-Indic
def test_an_id_written_with_other_digits_than_ascii_is_invalid_input(
    user: Any, opened: Callable[..., Any], after: str
) -> None:
    with pytest.raises(ValueError):
        eventlog.parse_id(after)
    with pytest.raises(InvalidInput):
        opened(actor_of(user), after=after)
    assert events.open_streams() == 0


def test_a_detached_subscription_holds_no_slot_and_attached_again_catches_up(
    user: Any, opened: Callable[..., Any]
) -> None:
    actor = actor_of(user)
    with override_settings(EVENTS_MAX_STREAMS_PER_USER=1):
        stream = opened(actor)
        stream.detach()
        assert events.open_streams() == 0
        other = opened(actor)  # the slot is free
        task_create(actor=actor, data={"title": "while detached"})
        with pytest.raises(TooManyStreams):
            stream.attach()
        other.close()
        stream.attach()
        assert events.open_streams() == 1
        assert _titles(take(stream, 1)) == ["while detached"]
