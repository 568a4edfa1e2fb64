"""tasks.cache: the read-through with stampede protection, against the real cache backend."""

from __future__ import annotations

import pickle
import sys
import threading
import time
import uuid
from types import FrameType
from typing import Any

import pytest
from django.core.cache import caches
from django_redis.cache import RedisCache

from core import eventlog
from core.cache import SafeCache, safe_cache
from core.memo import RenderedMemo
from tasks import cache as task_cache
from tasks.models import Task
from tasks.selectors import TaskNotFound, task_get, task_list, task_list_rows
from tasks.services import task_create, task_delete, task_update
from tests.factories import actor_of
from tests.tasks.helpers import page_keys, run_concurrently


class CountingBuild:
    """A build function that counts its calls and takes a little time, like a database query."""

    def __init__(self, value: Any, delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return self.value


def key() -> str:
    return f"test:get-or-build:{uuid.uuid4()}"


def test_miss_builds_and_stores() -> None:
    name, build = key(), CountingBuild({"answer": 42})
    assert task_cache.get_or_build(name, build) == {"answer": 42}
    assert safe_cache.get(name) == {"answer": 42}
    assert task_cache.get_or_build(name, build) == {"answer": 42}
    assert build.calls == 1


def test_rebuild_lock_is_released_after_a_build() -> None:
    name = key()
    task_cache.get_or_build(name, CountingBuild(1))
    assert safe_cache.get(f"{name}:rebuild") is None


def test_failing_build_releases_the_lock_and_caches_nothing() -> None:
    name = key()

    def boom() -> Any:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        task_cache.get_or_build(name, boom)
    assert safe_cache.get(f"{name}:rebuild") is None
    assert safe_cache.get(name) is None
    build = CountingBuild("fine")
    assert task_cache.get_or_build(name, build) == "fine"
    assert build.calls == 1


def test_builder_does_not_overwrite_a_value_stored_meanwhile() -> None:
    """Readers only `add`: a writer's fresher value stored during a rebuild wins."""
    name = key()

    def build() -> str:
        safe_cache.set(name, "written by a writer")
        return "stale read"

    assert task_cache.get_or_build(name, build) == "stale read"
    assert safe_cache.get(name) == "written by a writer"


@pytest.mark.parametrize("threads", [4, 8])
def test_concurrent_misses_of_one_key_build_once(threads: int) -> None:
    name = key()
    build = CountingBuild(["built", 1], delay=0.05)

    results = run_concurrently(threads, lambda _: task_cache.get_or_build(name, build))

    assert build.calls == 1
    assert results == [["built", 1]] * threads


def test_a_miss_that_overlaps_a_whole_rebuild_does_not_build_again() -> None:
    """Two callers miss the same key at once; the second is descheduled between its miss and taking
    the rebuild lock while the first rebuilds. Having got the lock, it must find the fresh value,
    not build a second time. The interleaving is forced with a trace hook that pauses the second
    thread at its `safe_cache.add(<key>:rebuild)` call; no code of ours is replaced."""
    name = key()
    build = CountingBuild("value")
    at_lock, resume = threading.Event(), threading.Event()

    def pause_before_taking_the_lock(frame: FrameType, event: str, arg: Any) -> None:
        if (
            event == "call"
            and frame.f_code is SafeCache.add.__code__
            and frame.f_locals.get("key") == f"{name}:rebuild"
        ):
            at_lock.set()
            resume.wait(5)

    def late_caller() -> Any:
        sys.settrace(pause_before_taking_the_lock)
        try:
            return task_cache.get_or_build(name, build)
        finally:
            sys.settrace(None)

    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(late_caller()))
    thread.start()
    assert at_lock.wait(5), "the late caller never reached the lock"
    assert task_cache.get_or_build(name, build) == "value"  # the first caller rebuilds meanwhile
    resume.set()
    thread.join(5)

    assert result == ["value"]
    assert build.calls == 1


def test_concurrent_misses_of_different_keys_build_each() -> None:
    builds = [CountingBuild(n, delay=0.02) for n in range(4)]
    names = [key() for _ in builds]
    results = run_concurrently(4, lambda i: task_cache.get_or_build(names[i], builds[i]))
    assert results == [0, 1, 2, 3]
    assert [b.calls for b in builds] == [1, 1, 1, 1]


def test_waiters_fall_back_to_building_when_the_builder_is_stuck() -> None:
    """Nobody waits for a stuck rebuild longer than WAIT_FOR_REBUILD: the request is served anyway."""
    name = key()
    release = threading.Event()
    calls: list[float] = []
    lock = threading.Lock()

    def build() -> str:
        with lock:
            calls.append(time.monotonic())
            first = len(calls) == 1
        if first:
            release.wait(10)  # the lock holder hangs until the others have been served
            return "late"
        return "served"

    outcome: list[list[Any]] = []
    runner = threading.Thread(
        target=lambda: outcome.append(run_concurrently(3, lambda _: task_cache.get_or_build(name, build)))
    )
    started = time.monotonic()
    runner.start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    waited = time.monotonic() - started
    release.set()
    runner.join(10)

    assert len(calls) == 3
    assert sorted(outcome[0]) == ["late", "served", "served"]
    assert waited < task_cache.WAIT_FOR_REBUILD + 5


def test_with_the_cache_disabled_every_call_builds(settings: Any) -> None:
    settings.CACHE_ENABLED = False
    name, build = key(), CountingBuild("v")
    assert [task_cache.get_or_build(name, build) for _ in range(3)] == ["v", "v", "v"]
    assert build.calls == 3
    settings.CACHE_ENABLED = True
    assert safe_cache.get(name) is None


def test_with_the_cache_disabled_concurrent_calls_all_build(settings: Any) -> None:
    settings.CACHE_ENABLED = False
    name, build = key(), CountingBuild("v", delay=0.01)
    assert run_concurrently(4, lambda _: task_cache.get_or_build(name, build)) == ["v"] * 4
    assert build.calls == 4


def test_absent_marker_is_cached_briefly() -> None:
    name = key()
    assert task_cache.get_or_build(name, CountingBuild(task_cache.ABSENT)) == task_cache.ABSENT
    assert safe_cache.get(name) == task_cache.ABSENT


@pytest.mark.redis
@pytest.mark.django_db
def test_cached_reads_live_in_redis_not_in_the_process(user: Any) -> None:
    """With Redis, another process (here: a fresh backend object with no local state) sees the entries."""
    actor = actor_of(user)
    task = task_create(actor=actor, data={"title": "shared"})
    task_get(actor=actor, task_id=task.pk)
    task_list(actor=actor)
    fresh = caches.create_connection("default")
    assert isinstance(fresh, RedisCache)  # django-redis' backend (or django-prometheus' subclass of it)
    key = task_cache.task_key(task.pk)
    entry = fresh.get(key)
    assert entry is not None and entry[0] == task_cache.ROW_SHAPE
    assert task_cache.task_from_row(task_cache.entry_row(key, entry)).title == "shared"
    assert fresh.get(f"tasks:generation:{task_cache.owner_scope(user.pk)}") is not None


@pytest.mark.django_db
def test_an_entry_of_other_columns_is_a_miss_until_the_next_write(
    user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A release with other columns (a rolling deploy runs two side by side) wrote this entry: it is
    never read as a task, and the next write of the task replaces it."""
    actor = actor_of(user)
    task = task_create(actor=actor, data={"title": "current"})
    foreign = ("0ther000", task.pk, "a row of another release", 7)
    safe_cache.set(task_cache.task_key(task.pk), foreign)

    assert task_get(actor=actor, task_id=task.pk).title == "current"
    assert safe_cache.get(task_cache.task_key(task.pk)) == foreign  # a reader never overwrites

    with django_capture_on_commit_callbacks(execute=True):
        task_update(actor=actor, task_id=task.pk, changes={"title": "changed"})
    assert safe_cache.get(task_cache.task_key(task.pk))[0] == task_cache.ROW_SHAPE
    assert task_get(actor=actor, task_id=task.pk).title == "changed"


@pytest.mark.django_db
def test_a_row_keeps_the_id_as_text_and_gives_the_model_back(user: Any) -> None:
    """A cached row holds the id as its text (a UUID object costs more to unpickle than the rest of
    the row); the model made from it holds the UUID, equal to the one the database gives."""
    task = task_create(actor=actor_of(user), data={"title": "text id", "tags": ["a"]})
    row = task_cache.task_to_row(task)
    assert row[task_cache._FIELDS.index("id")] == str(task.pk)
    rebuilt = task_cache.task_from_row(row)
    assert isinstance(rebuilt.pk, uuid.UUID) and rebuilt.pk == task.pk
    assert task_cache.task_to_row(rebuilt) == row


@pytest.mark.django_db
def test_a_cached_task_is_decoded_once_while_its_entry_is_unchanged(user: Any) -> None:
    """A task's entry holds its row encoded; every read of equal bytes gives the row decoded once,
    and a write (new bytes under the same key) is read as it now is."""
    actor = actor_of(user)
    task = task_create(actor=actor, data={"title": "one"})
    task_get(actor=actor, task_id=task.pk)  # fills the cache
    key = task_cache.task_key(task.pk)
    shape, encoded = safe_cache.get(key)
    assert shape == task_cache.ROW_SHAPE and isinstance(encoded, bytes)

    first, again = task_cache.task_row_cached(task.pk), task_cache.task_row_cached(task.pk)
    assert first is again  # the second read decoded nothing
    assert first == task_cache.task_to_row(Task.objects.get(pk=task.pk))

    stored = Task.objects.get(pk=task.pk)
    stored.title = "two"  # another process's entry under the same key
    safe_cache.set(key, task_cache.task_entry(stored))
    changed = task_cache.task_row_cached(task.pk)
    assert changed is not first and changed[task_cache._FIELDS.index("title")] == "two"
    assert task_get(actor=actor, task_id=task.pk).title == "two"


@pytest.mark.django_db
def test_a_task_made_from_a_shared_row_has_tags_of_its_own(user: Any) -> None:
    """The decoded row is shared by every reader in the process: changing one task's tags in place
    never reaches the next reader."""
    actor = actor_of(user)
    task = task_create(actor=actor, data={"title": "tagged", "tags": ["a"]})
    task_get(actor=actor, task_id=task.pk)

    task_get(actor=actor, task_id=task.pk).tags.append("changed in place")

    assert task_get(actor=actor, task_id=task.pk).tags == ["a"]
    assert task_cache.task_row_cached(task.pk)[task_cache._TAGS] == ["a"]


@pytest.mark.django_db
def test_a_task_read_from_the_database_is_not_decoded_back_from_its_entry(
    user: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miss answers the model it loaded: its entry is made for the cache, never unpickled again by
    the reader that made it. With the cache off no entry is made at all."""
    actor = actor_of(user)
    task = task_create(actor=actor, data={"title": "loaded"})
    decoded: list[str] = []
    monkeypatch.setattr(task_cache, "entry_row", lambda key, entry: decoded.append(key))
    made: list[Any] = []
    make_entry = task_cache.task_entry

    def task_entry(model: Task) -> task_cache.TaskEntry:
        made.append(model.pk)
        return make_entry(model)

    monkeypatch.setattr(task_cache, "task_entry", task_entry)

    settings.CACHE_ENABLED = False
    assert task_get(actor=actor, task_id=task.pk).title == "loaded"
    assert made == []
    settings.CACHE_ENABLED = True
    safe_cache.delete(task_cache.task_key(task.pk))
    assert task_get(actor=actor, task_id=task.pk).title == "loaded"  # a miss: built and stored

    assert decoded == [] and made == [task.pk]
    assert safe_cache.get(task_cache.task_key(task.pk))[0] == task_cache.ROW_SHAPE


def test_list_pages_are_keyed_by_the_row_shape() -> None:
    key, slot = task_cache.page_key(task_cache.ALL_SCOPE, [("limit", 20)])
    assert key == f"tasks:page:{task_cache.ROW_SHAPE}:{slot}" and slot.startswith(f"{task_cache.ALL_SCOPE}:")


# -- list pages: rows kept encoded, decoded once per process -----------------------------------------------


@pytest.mark.django_db
def test_a_cached_page_is_decoded_once_while_its_entry_is_unchanged(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    actor = actor_of(user)
    for title in ("one", "two"):
        task_create(actor=actor, data={"title": title})
    keys = page_keys(monkeypatch)

    first, again = task_list_rows(actor=actor), task_list_rows(actor=actor)

    assert keys[0] == keys[1] and keys[0].startswith(f"tasks:page:{task_cache.ROW_SHAPE}:")
    generation, (encoded, _, _) = safe_cache.get(keys[0])
    assert generation == safe_cache.get(f"tasks:generation:{task_cache.owner_scope(user.pk)}")
    assert isinstance(encoded, bytes)  # the entry holds the rows encoded
    assert first.rows is again.rows  # the second read decoded nothing
    assert [row[task_cache._FIELDS.index("title")] for row in again.rows] == ["two", "one"]


@pytest.mark.django_db
def test_a_page_entry_replaced_under_the_same_key_is_read_as_it_now_is(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a process remembers of a page is keyed by the page's place and checked against the
    entry's bytes: another process's entry under the same key (same generation) is what is read."""
    actor = actor_of(user)
    for title in ("one", "two"):
        task_create(actor=actor, data={"title": title})
    keys = page_keys(monkeypatch)
    assert len(task_list_rows(actor=actor).rows) == 2
    generation, (encoded, next_cursor, previous_cursor) = safe_cache.get(keys[0])
    only_the_first = pickle.loads(encoded)[:1]

    safe_cache.set(keys[0], (generation, task_cache.page_entry(only_the_first, next_cursor, previous_cursor)))

    assert task_list_rows(actor=actor).rows == tuple(only_the_first)
    assert keys[1] == keys[0]


def test_a_page_renders_from_the_memo_only_for_equal_rows() -> None:
    memo: RenderedMemo[int] = RenderedMemo("test.page", size=4)
    renders: list[tuple[Any, ...]] = []

    def render(rows: tuple[Any, ...]) -> int:
        renders.append(rows)
        return len(rows)

    one, two = task_cache.page_entry([("a",)], None, None), task_cache.page_entry([("a",), ("b",)], "n", None)
    assert task_cache.CachedPage("slot", one).rendered(memo, render) == 1
    assert task_cache.CachedPage("slot", one).rendered(memo, render) == 1
    assert task_cache.CachedPage("slot", two).rendered(memo, render) == 2
    uncached = task_cache.CachedPage.uncached([("a",), ("b",)], "n", None)  # the cache could not hold it
    assert uncached.rendered(memo, render) == 2 and uncached.rows == (("a",), ("b",))  # never remembered
    assert renders == [(("a",),), (("a",), ("b",)), (("a",), ("b",))]
    assert len(memo) == 1


# -- list pages: the scope's generation and the page in one round trip -------------------------------------


def _titles(page: task_cache.CachedPage) -> list[str]:
    return [row[task_cache._FIELDS.index("title")] for row in page.rows]


def _generation(user: Any) -> Any:
    return safe_cache.get(f"tasks:generation:{task_cache.owner_scope(user.pk)}")


def _lookups() -> tuple[int, int]:
    totals = safe_cache.stats()
    return totals["hits"], totals["misses"]


@pytest.mark.django_db
def test_a_write_makes_the_scope_s_pages_out_of_date_under_the_same_key(
    user: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    actor = actor_of(user)
    with django_capture_on_commit_callbacks(execute=True):
        task_create(actor=actor, data={"title": "one"})
    keys = page_keys(monkeypatch)
    assert _titles(task_list_rows(actor=actor)) == ["one"]
    before = safe_cache.get(keys[0])[0]

    with django_capture_on_commit_callbacks(execute=True):
        task_create(actor=actor, data={"title": "two"})

    assert _titles(task_list_rows(actor=actor)) == ["two", "one"]
    assert keys[1] == keys[0]
    assert safe_cache.get(keys[0])[0] == _generation(user) != before  # rebuilt under the new generation


@pytest.mark.django_db
def test_a_page_stored_late_under_an_older_generation_is_never_served(
    user: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """A reader that loaded a page before a write and stores it after the write's readers stored
    theirs (`set`, over the current page) costs the next reader a miss, never the old page."""
    actor = actor_of(user)
    with django_capture_on_commit_callbacks(execute=True):
        task_create(actor=actor, data={"title": "one"})
    keys = page_keys(monkeypatch)
    task_list_rows(actor=actor)
    late = safe_cache.get(keys[0])  # what the slow reader built: the page before the write
    with django_capture_on_commit_callbacks(execute=True):
        task_create(actor=actor, data={"title": "two"})
    assert _titles(task_list_rows(actor=actor)) == ["two", "one"]

    safe_cache.set(keys[0], late)

    assert _titles(task_list_rows(actor=actor)) == ["two", "one"]
    assert safe_cache.get(keys[0])[0] == _generation(user)  # the current page is back


@pytest.mark.django_db
def test_a_page_read_counts_its_generation_and_its_page_as_two_lookups(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As two reads would count: the generation a hit when present, the page a hit only when it is
    of that generation (a page of another one is a miss, found or not)."""
    actor = actor_of(user)
    keys = page_keys(monkeypatch)
    task_list_rows(actor=actor)  # stores the page
    hits, misses = _lookups()

    task_list_rows(actor=actor)
    assert _lookups() == (hits + 2, misses)

    generation, entry = safe_cache.get(keys[0])
    safe_cache.set(keys[0], (generation - 1, entry))
    hits, misses = _lookups()
    task_list_rows(actor=actor)
    # the generation a hit, the page a miss, and the rebuild's look at the key under its lock a miss
    assert _lookups() == (hits + 1, misses + 2)


@pytest.mark.redis
@pytest.mark.django_db
def test_a_cached_page_is_one_round_trip_to_redis(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One MGET of the scope's generation and the page, on the thread's held connection: nothing
    else is sent to Redis for a page that is current."""
    actor = actor_of(user)
    keys = page_keys(monkeypatch)
    task_list_rows(actor=actor)
    connection = safe_cache.backend.client.get_client(write=False).connection
    sent: list[tuple[Any, ...]] = []
    real = connection.send_command
    monkeypatch.setattr(connection, "send_command", lambda *args, **kw: sent.append(args) or real(*args, **kw))

    task_list_rows(actor=actor)

    backend = safe_cache.backend
    generation_key = f"tasks:generation:{task_cache.owner_scope(user.pk)}"
    assert sent == [("MGET", backend.make_key(generation_key), backend.make_key(keys[0]))]


@pytest.mark.django_db
def test_a_page_read_with_the_cache_off_counts_no_lookup(user: Any, settings: Any) -> None:
    actor = actor_of(user)
    task_create(actor=actor, data={"title": "one"})
    hits, misses = _lookups()
    settings.CACHE_ENABLED = False

    assert _titles(task_list_rows(actor=actor)) == ["one"]
    settings.CACHE_ENABLED = True
    assert _lookups() == (hits, misses)


@pytest.mark.parametrize("write", ["update", "delete", "the owner's deletion"])
def test_a_write_is_in_the_cache_before_its_event_is_told(
    user: Any, write: str, django_capture_on_commit_callbacks: Any
) -> None:
    """A subscriber that reads a task as soon as its event arrives reads what the event says: a write's
    work on commit updates the cache before it appends the event. Its callbacks run one at a time
    here, and whenever the event is in the log, the cached read is the new state."""
    actor = actor_of(user)
    with django_capture_on_commit_callbacks(execute=True):
        task = task_create(actor=actor, data={"title": "before"})
    assert task_get(actor=actor, task_id=task.pk).title == "before"  # cached
    log = eventlog.event_log()
    position = log.position()

    def read() -> str:
        try:
            return task_get(actor=actor, task_id=task.pk).title
        except TaskNotFound:
            return "gone"

    with django_capture_on_commit_callbacks() as callbacks:
        if write == "update":
            task_update(actor=actor, task_id=task.pk, changes={"title": "after"})
        elif write == "delete":
            task_delete(actor=actor, task_id=task.pk)
        else:
            user.delete()
    expected = "after" if write == "update" else "gone"
    for callback in callbacks:
        callback()
        if log.read_after(position, 10):
            assert read() == expected
    assert len(log.read_after(position, 10)) == 1
