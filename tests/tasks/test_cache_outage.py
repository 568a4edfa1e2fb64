"""No stale reads after Redis stalls: a write the cache could not take is invalidated once Redis
answers again, in this process before it reads and for every other process within the documented
bound (docs/architecture.md, "Cache").

Against a real Redis server of the test's own, stalled for real with `DEBUG SLEEP`; real writes
through the services; "another replica" is a second cache backend with its own connections, reading
the same Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from django_redis.cache import RedisCache

from core.cache import safe_cache
from tasks import cache as task_cache
from tasks.models import Task
from tasks.selectors import task_get
from tasks.services import task_create, task_update
from tests.factories import actor_of
from tests.faults import private_redis, redis_stall

pytestmark = pytest.mark.django_db(transaction=True)

# The bound documented in docs/architecture.md ("Cache"): REPAIR_INTERVAL (0.2 s) plus one Redis
# timeout (0.25 s) after Redis answers again; with a margin for a loaded test machine.
BOUND = 1.0
OPTIONS = {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25}


@pytest.fixture
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        params = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "outage",
            "OPTIONS": OPTIONS,
        }
        with override_settings(CACHES={"default": params}, CACHE_ENABLED=True, CACHE_RETRY_AFTER=1.0):
            safe_cache.reset()
            yield url
        safe_cache.reset()


def replica(url: str) -> RedisCache:
    """The shared cache as another process sees it: same keys, connections of its own."""
    return RedisCache(url, {"KEY_PREFIX": "outage", "OPTIONS": OPTIONS})


def cached_version(cache: RedisCache, task_id: Any) -> int | None:
    """The version of the task a process reading `cache` would be served, or None for a miss."""
    key = task_cache.task_key(task_id)
    entry = cache.get(key)
    row = task_cache.entry_row(key, entry) if isinstance(entry, tuple) else None
    if row is None:
        return None  # absent, a tombstone, a marker or another release's entry: read from the database
    return task_cache.task_from_row(row).version


def stale_reads(other: RedisCache, actor: Any, tasks: list[Task]) -> list[str]:
    """Reads, here and in the other replica, that are older than the database."""
    stale = []
    for task in tasks:
        current = Task.objects.get(pk=task.pk).version
        there = cached_version(other, task.pk)
        if there is not None and there != current:
            stale.append(f"replica: {task.title} at v{there}, database v{current}")
        here = task_get(actor=actor, task_id=task.pk).version
        if here != current:
            stale.append(f"this process: {task.title} at v{here}, database v{current}")
    return stale


def test_no_read_is_older_than_the_database_after_a_stall(
    redis_url: str, user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    actor = actor_of(user)
    tasks = [task_create(actor=actor, data={"title": f"task {n}"}) for n in range(8)]
    other = replica(redis_url)
    for task in tasks:  # cached at version 1, here and for the other replica
        assert task_get(actor=actor, task_id=task.pk).version == 1
        assert cached_version(other, task.pk) == 1

    stall = redis_stall(redis_url, 2)
    done = threading.Event()
    errors: list[BaseException] = []

    def write_until_done() -> None:
        """Writes all through the stall and just after it, as a loaded service makes them."""
        try:
            n = 0
            while not done.is_set():
                task_update(actor=actor, task_id=tasks[n % len(tasks)].pk, changes={"title": f"write {n}"})
                n += 1
                time.sleep(0.01)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read_until_done() -> None:
        """Reads meanwhile: readers that load a row while a write commits, and try to cache it."""
        try:
            while not done.is_set():
                for task in tasks:
                    task_get(actor=actor, task_id=task.pk)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with caplog.at_level(logging.INFO, logger="core.cache"):
        workers = [threading.Thread(target=write_until_done), threading.Thread(target=read_until_done)]
        for worker in workers:
            worker.start()
        stall.join(30)
        time.sleep(0.3)  # writes and reads go on a while after Redis answers again
        done.set()
        for worker in workers:
            worker.join(30)
        assert not errors, errors
        recovered = time.monotonic()
        time.sleep(BOUND)

        # From now on, every read, in either process, is at the database's version.
        stale: list[str] = []
        while time.monotonic() < recovered + BOUND + 1.5:
            stale += stale_reads(other, actor, tasks)
        assert not stale, stale[:10]

    messages = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert any(level == logging.WARNING and "did not take the update" in text for level, text in messages)
    assert any(level == logging.INFO and "cache repaired" in text for level, text in messages)


def writes_while_stalled(actor: Any, task: Task) -> None:
    """Two writes of `task` while Redis sleeps: the first one's update times out (and runs when Redis
    wakes up), the second one's is skipped (the cache rests after the fault)."""
    task_update(actor=actor, task_id=task.pk, changes={"title": "first"})
    task_update(actor=actor, task_id=task.pk, changes={"title": "second"})


def test_the_other_replica_is_repaired_without_this_process_reading(redis_url: str, user: Any) -> None:
    """The background repair, not only this process's next read, invalidates what it could not update."""
    actor = actor_of(user)
    task = task_create(actor=actor, data={"title": "before"})
    other = replica(redis_url)
    task_get(actor=actor, task_id=task.pk)
    assert cached_version(other, task.pk) == 1

    stall = redis_stall(redis_url, 1)
    time.sleep(0.05)
    writes_while_stalled(actor, task)
    stall.join(30)
    time.sleep(BOUND)
    assert cached_version(other, task.pk) in (None, 3)


def test_a_reader_that_loaded_the_old_row_cannot_store_it_after_the_repair(redis_url: str, user: Any) -> None:
    actor = actor_of(user)
    task = task_create(actor=actor, data={"title": "before"})
    old_entry = task_cache.task_entry(Task.objects.get(pk=task.pk))  # loaded, not yet stored

    stall = redis_stall(redis_url, 1)
    time.sleep(0.05)
    writes_while_stalled(actor, task)
    stall.join(30)
    time.sleep(BOUND)

    # The slow reader stores what it loaded, as get_or_build does: readers only `add`.
    assert safe_cache.add(task_cache.task_key(task.pk), old_entry) is False
    assert cached_version(replica(redis_url), task.pk) in (None, 3)
    assert task_get(actor=actor, task_id=task.pk).title == "second"


def test_too_many_missed_updates_drop_everything_cached(
    redis_url: str, user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.cache.PENDING_LIMIT", 3, raising=False)
    actor = actor_of(user)
    tasks = [task_create(actor=actor, data={"title": f"task {n}"}) for n in range(5)]
    other = replica(redis_url)
    for task in tasks:
        task_get(actor=actor, task_id=task.pk)
    assert all(cached_version(other, task.pk) == 1 for task in tasks)

    stall = redis_stall(redis_url, 1)
    time.sleep(0.05)
    for task in tasks:  # 5 tasks, 2 generations: more keys than the 3 remembered
        writes_while_stalled(actor, task)
    stall.join(30)
    time.sleep(BOUND)

    assert [cached_version(other, task.pk) for task in tasks] == [None] * 5
    assert [task_get(actor=actor, task_id=task.pk).version for task in tasks] == [3] * 5
