"""Renderings remembered per process, reused only while their source is unchanged.

A protocol adapter renders the same cached task (a row of column values) into the same bytes on
every read: JSON for REST, a serialized message for gRPC. `RenderedMemo` keeps the last rendering of
each key beside the source it was made from, and serves it again only when the source of the new
read compares equal. Nothing has to invalidate it, so no write path, other process or cache outage
can leave a stale rendering behind: a changed row (a new version, owner, title...) simply misses.

    TASK_JSON = RenderedMemo("rest.task")
    body = TASK_JSON.get(task.pk, row, lambda: render(task))
    bodies = TASK_JSON.get_many(rows, itemgetter(0), render_row)  # a page of rows, in order

The render function must be pure: its result may depend only on the source (and on code and
settings that do not change while the process runs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterable
from functools import partial
from typing import Generic, TypeVar

T = TypeVar("T")
S = TypeVar("S")

DEFAULT_SIZE = 10_000


class RenderedMemo(Generic[T]):
    """Up to `size` renderings by key; past it the oldest entry is dropped. Thread-safe under the
    GIL: two threads may render the same key at once, and either result is right."""

    __slots__ = ("_entries", "name", "size")

    def __init__(self, name: str, size: int = DEFAULT_SIZE) -> None:
        self.name = name
        self.size = size
        self._entries: dict[Hashable, tuple[object, T]] = {}

    def get(self, key: Hashable, source: object, render: Callable[[], T]) -> T:
        """The rendering of `source`, from the memo when the key's entry was made from an equal source."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == source:
            return entry[1]
        value = render()
        entries = self._entries
        if key not in entries:
            # A loop, not one drop: two threads that dropped the same oldest entry at once both add
            # theirs, one over the size, which the next addition takes back.
            while entries and len(entries) >= self.size:
                with contextlib.suppress(KeyError, RuntimeError, StopIteration):  # another thread changed it meanwhile
                    del entries[next(iter(entries))]
        entries[key] = (source, value)
        return value

    def get_many(self, sources: Iterable[S], key: Callable[[S], Hashable], render: Callable[[S], T]) -> list[T]:
        """`get` of each source, in order, under `key(source)`, rendered by `render(source)`: the
        renderings of a list (a page of 50 tasks) without a call and a closure per item when the memo
        has them. `key` is best a C function (`operator.itemgetter`)."""
        entries = self._entries
        values = []
        for source in sources:
            entry = entries.get(key(source))
            if entry is not None and entry[0] == source:
                values.append(entry[1])
            else:
                values.append(self.get(key(source), source, partial(render, source)))
        return values

    def clear(self) -> None:
        self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)
