"""Caching of task reads (docs/architecture.md, "Cache").

- One key per task (`task:<id>`) holding the task's column values (their pickle, decoded once per
  process for equal bytes); writes replace it with the new
  row (or a tombstone on delete) when their transaction commits, and readers only ever `add`, so a
  reader that loaded an older row cannot overwrite what a writer stored. A write the cache could not
  take (Redis unreachable or stalled) is not lost: `safe_cache.replace` has the key invalidated once
  the cache answers again, with a marker no reader's `add` replaces.
- One key per list page, holding the page with the generation of its owner scope it was built
  under: a write bumps the generation of its owner and of the "all" scope (managers), which makes
  every cached page of that scope out of date in O(1). A read asks for the generation and the page
  in one round trip.
- On a miss, one caller per key rebuilds (a short lock in the cache); others wait briefly for its
  result and fall back to the database if it does not come.
- Every call goes through `core.cache.safe_cache`, so a cache fault is a miss, never an error.

Visibility is not decided here: the task's owner travels with the cached row and the selectors
check it, so cached data never crosses users.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from core.cache import safe_cache
from core.encoding import canonical_json
from core.memo import RenderedMemo
from tasks.models import Task

T = TypeVar("T")

ABSENT = "absent"  # stored for a task that does not exist or was deleted
ABSENT_TTL = 30
LOCK_TTL = 5  # seconds a rebuild lock lives if its holder dies
WAIT_FOR_REBUILD = 0.2  # seconds a reader waits for another's rebuild before going to the database

_FIELDS = tuple(field.attname for field in Task._meta.concrete_fields)
_ID = _FIELDS.index("id")
_TAGS = _FIELDS.index("tags")
# The columns a cached row holds: names, order and field types, and how a row is kept (the id as its
# text, below; a single task's row as its pickle, `task_entry`). A single task's entry carries it and
# list page keys include it, so a release
# that adds, drops, reorders, renames or retypes a column, or keeps a value another way, never reads
# another release's rows: while both run side by side (a rolling deploy), such an entry is a miss,
# served from the database, until the next write of the task replaces it.
ROW_SHAPE = hashlib.sha256(
    (
        ",".join(f"{field.attname}:{field.get_internal_type()}" for field in Task._meta.concrete_fields)
        + ";id:text;row:pickle"
    ).encode()
).hexdigest()[:8]


# -- row <-> cached value ---------------------------------------------------------------------------


def task_to_row(task: Task) -> tuple[Any, ...]:
    """The task's column values, in the model's column order: what a cache entry holds. The id is
    kept as its text: unpickling a UUID object (its state includes an enum) costs more than the
    whole rest of the row, and every adapter sends the id as text anyway."""
    row = [getattr(task, name) for name in _FIELDS]
    row[_ID] = str(row[_ID])
    return tuple(row)


def task_from_row(row: Sequence[Any]) -> Task:
    """The task a cached row stands for, as if just loaded from the database. Its tags are a list of
    its own: a decoded row is shared by every reader in the process (`entry_row`, `CachedPage.rows`)."""
    values = list(row)
    values[_ID] = UUID(values[_ID])
    values[_TAGS] = list(values[_TAGS])
    return Task.from_db("default", _FIELDS, values)


# A task's cache entry: (ROW_SHAPE, the pickle of its row). The row stays encoded in the entry, as a
# list page's rows do: a hit copies bytes, and each process decodes equal bytes once (`entry_row`),
# where unpickling the row's datetimes on every hit cost ~2% of a cached REST GET.
TaskEntry = tuple[str, bytes]
_TASK_ROWS: RenderedMemo[tuple[Any, ...]] = RenderedMemo("tasks.task_rows")


def task_entry(task: Task) -> TaskEntry:
    """What the cache keeps of a task."""
    return ROW_SHAPE, pickle.dumps(task_to_row(task), pickle.HIGHEST_PROTOCOL)


def entry_row(key: str, entry: Sequence[Any]) -> tuple[Any, ...] | None:
    """The row of the task entry stored under `key`, None for an entry of another release (another
    row shape). Equal bytes under a key give the same row object, decoded once per process; changed
    bytes (a write, another process's entry) are decoded again."""
    if entry[0] != ROW_SHAPE:
        return None
    encoded = entry[1]
    return _TASK_ROWS.get(key, encoded, partial(pickle.loads, encoded))


# -- the generic read-through with stampede protection -----------------------------------------------


def get_or_build(key: str, build: Callable[[], T], *, timeout: float | None = None) -> T:
    """Return the cached value of `key`, or build it, letting only one caller build at a time.
    Readers only `add`: a value a writer stored is never replaced by a reader's."""
    value = safe_cache.get(key)
    if value is not None:
        return value  # type: ignore[no-any-return]

    def store(value: T) -> None:
        safe_cache.add(key, value, timeout=ABSENT_TTL if value == ABSENT else timeout)

    return _build_once(key, build, lock=f"{key}:rebuild", store=store)


def _build_once(
    key: str,
    build: Callable[[], T],
    *,
    lock: str,
    store: Callable[[T], object],
    current: Callable[[Any], bool] | None = None,
) -> T:
    """`build()` the value of `key`, which a read just missed, and `store` it, with `lock` held, so
    that one caller at a time builds; others wait briefly for its value, then build without storing.
    `current` says whether a stored value may be used (any may, without it)."""
    if not safe_cache.enabled:
        return build()
    if safe_cache.add(lock, 1, timeout=LOCK_TTL):
        try:
            # Another caller may have finished a whole rebuild between our miss and our lock.
            value = _usable(safe_cache.lookup_many([key]), key, current)
            if value is not None:
                return value  # type: ignore[no-any-return]
            value = build()
            store(value)
            return value
        finally:
            safe_cache.delete(lock)
    deadline = time.monotonic() + WAIT_FOR_REBUILD
    while time.monotonic() < deadline:
        time.sleep(0.005)
        found = safe_cache.lookup_many([key, lock])
        value = _usable(found, key, current)
        if value is not None:
            return value  # type: ignore[no-any-return]
        if found is None or lock not in found:
            break  # the builder is done but stored nothing (it failed, or the key is invalidated)
    return build()


def _usable(found: dict[str, Any] | None, key: str, current: Callable[[Any], bool] | None) -> Any:
    """`found[key]` if `current` accepts it (any value, without `current`), else None; counted as a
    hit or a miss when the cache was asked (`found` is not None: `SafeCache.lookup_many`)."""
    if found is None:
        return None
    value = found.get(key)
    usable = value is not None and (current is None or current(value))
    safe_cache.count_lookups(hits=int(usable), misses=int(not usable))
    return value if usable else None


# -- single tasks ---------------------------------------------------------------------------------------


def task_key(task_id: UUID) -> str:
    return f"task:{task_id}"


def task_cached(task_id: UUID, load: Callable[[], Task | None]) -> Task | None:
    """The task with this id from the cache, or from `load` (which reads the database)."""
    if not safe_cache.enabled:  # off, or resting after a fault: nothing would be read or stored
        return load()
    loaded: list[Task | None] = []

    def build() -> Any:
        task = load()
        loaded.append(task)
        return ABSENT if task is None else task_entry(task)

    key = task_key(task_id)
    entry = get_or_build(key, build)
    if loaded:  # built here (a miss): the entry is this model's, not decoded back
        return loaded[0]
    if entry == ABSENT:
        return None
    row = entry_row(key, entry)
    if row is None:  # written by a release with other columns
        return load()
    return task_from_row(row)


def task_row_cached(task_id: UUID) -> tuple[Any, ...] | str | None:
    """The task's row if the cache holds it (this release's shape), ABSENT if the cache knows it does
    not exist, None on a miss (no rebuild: the caller goes on to `task_cached`)."""
    key = task_key(task_id)
    entry = safe_cache.get(key)
    if entry is None or entry == ABSENT:
        return entry  # type: ignore[no-any-return]
    return entry_row(key, entry)


def task_written(task: Task) -> None:
    """Call on commit of a create or update: store the new row and orphan the owner's list pages."""
    with safe_cache.publishing():
        safe_cache.replace(task_key(task.pk), task_entry(task))
        _bump_generations(task.owner_id)


def task_deleted(task_id: UUID, owner_id: int) -> None:
    """Call on commit of a delete."""
    tasks_deleted([task_id], owner_id)


def tasks_deleted(task_ids: Iterable[UUID], owner_id: int) -> None:
    """Call on commit of a delete of tasks of one owner (all of them, when the owner is deleted)."""
    with safe_cache.publishing():
        for task_id in task_ids:
            safe_cache.replace(task_key(task_id), ABSENT, timeout=ABSENT_TTL)
        _bump_generations(owner_id)


# -- list pages -----------------------------------------------------------------------------------------


# A list page's cache entry: (the pickle of its rows, next cursor, previous cursor). The rows stay
# encoded in the entry, so reading a page costs a copy of bytes instead of unpickling 50 rows; each
# process decodes (and adapters render) equal bytes once (`CachedPage.rendered`).
PageEntry = tuple[bytes, "str | None", "str | None"]
PAGE_MEMO_SIZE = 256  # pages remembered per process and memo (a page of 50 rows: ~100 kB decoded)
_PAGE_ROWS: RenderedMemo[tuple[tuple[Any, ...], ...]] = RenderedMemo("tasks.page_rows", size=PAGE_MEMO_SIZE)


def page_entry(rows: Sequence[tuple[Any, ...]], next_cursor: str | None, previous_cursor: str | None) -> PageEntry:
    """What the cache keeps of a list page of rows (`task_to_row`)."""
    return pickle.dumps(tuple(rows), pickle.HIGHEST_PROTOCOL), next_cursor, previous_cursor


class CachedPage:
    """A page of task rows (`task_to_row`) and its cursors, as a list page's cache entry gives it.

    `rows` decodes the entry's rows once per process for equal bytes: while a page is unchanged,
    every read of it returns the same tuple. An adapter remembers what it makes of the rows the same
    way, with `rendered`. `slot` names the page whatever its generation (its scope and parameters),
    so a new generation of a page takes the place of the old one in the memos. A page the cache
    could not hold (`uncached`) keeps its rows as they are, and nothing is remembered of it.
    """

    __slots__ = ("_rows", "encoded", "next_cursor", "previous_cursor", "slot")

    def __init__(self, slot: str, entry: PageEntry) -> None:
        self.slot: str | None = slot
        self.encoded, self.next_cursor, self.previous_cursor = entry
        self._rows: tuple[tuple[Any, ...], ...] = ()

    @classmethod
    def uncached(
        cls, rows: Sequence[tuple[Any, ...]], next_cursor: str | None, previous_cursor: str | None
    ) -> CachedPage:
        page = cls.__new__(cls)
        page.slot, page.encoded, page.next_cursor, page.previous_cursor = None, b"", next_cursor, previous_cursor
        page._rows = tuple(rows)
        return page

    @property
    def rows(self) -> tuple[tuple[Any, ...], ...]:
        if self.slot is None:
            return self._rows
        return _PAGE_ROWS.get(self.slot, self.encoded, partial(pickle.loads, self.encoded))

    def rendered(self, memo: RenderedMemo[T], render: Callable[[tuple[tuple[Any, ...], ...]], T]) -> T:
        """`render(self.rows)`, from `memo` while this page's slot holds a rendering of equal rows
        (compared as their encoded bytes: equal bytes, equal rows)."""
        if self.slot is None:
            return render(self._rows)
        return memo.get(self.slot, self.encoded, lambda: render(self.rows))


def _generation_key(scope: str) -> str:
    return f"tasks:generation:{scope}"


def owner_scope(owner_id: int) -> str:
    return f"owner:{owner_id}"


ALL_SCOPE = "all"


def _bump_generations(owner_id: int) -> None:
    for scope in (owner_scope(owner_id), ALL_SCOPE):
        safe_cache.bump(_generation_key(scope))


def page_key(scope: str, params: Iterable[tuple[str, Any]]) -> tuple[str, str]:
    """The cache key of one list page of a scope, and the page's slot: its scope and a digest of its
    parameters. The key names no generation: the entry carries the one it was built under."""
    digest = hashlib.sha256(canonical_json(sorted(params)).encode()).hexdigest()[:32]
    slot = f"{scope}:{digest}"
    return f"tasks:page:{ROW_SHAPE}:{slot}", slot


def page_cached(
    scope: str, params: Iterable[tuple[str, Any]], load: Callable[[], tuple[Sequence[tuple[Any, ...]], Any, Any]]
) -> CachedPage:
    """One list page of a scope: from the cache while its entry was built under the scope's current
    generation, else from `load` (the rows, `task_to_row`, and the next and previous cursors) and
    stored with that generation for the next reader.

    The generation and the page are read in one round trip (`lookup_many`), which is why the page's
    key names no generation. Each counts as a lookup of its own, as two reads would: the generation
    a hit when present, the page a hit only when it is current. A reader replaces a page of an older
    generation (`set`), where a task's entry is only ever `add`ed by readers: a page is trusted only
    under the generation it carries, which its builder read before it loaded the rows, so a slow
    reader that stores a page of an old generation costs the next reader a miss, never a stale page.
    When the cache cannot say the generation, the page is read from the database.
    """
    key, slot = page_key(scope, params)
    generation_key = _generation_key(scope)
    found = safe_cache.lookup_many([generation_key, key])
    if found is None:  # the cache was not asked (off, skipped, a repair pending) or failed: nothing to count
        return CachedPage.uncached(*load())
    generation, stored = found.get(generation_key), found.get(key)
    if generation is not None and stored is not None and stored[0] == generation:
        safe_cache.count_lookups(hits=2, misses=0)
        return CachedPage(slot, stored[1])
    safe_cache.count_lookups(hits=int(generation is not None), misses=1 + int(generation is None))
    if generation is None:
        generation = _start_generation(generation_key)
        if generation is None:
            return CachedPage.uncached(*load())

    def build() -> tuple[Any, PageEntry]:
        return generation, page_entry(*load())

    def store(value: tuple[Any, PageEntry]) -> None:
        safe_cache.set(key, value)

    _, entry = _build_once(
        key, build, lock=f"{key}:{generation}:rebuild", store=store, current=lambda value: value[0] == generation
    )
    return CachedPage(slot, entry)


def _start_generation(key: str) -> Any:
    """The generation of a scope that has none in the cache (new, or evicted): one from the clock,
    never a value used before. None when another caller started one meanwhile, or on a fault."""
    if not safe_cache.add(key, time.time_ns(), timeout=None):
        return None
    return safe_cache.get(key)
