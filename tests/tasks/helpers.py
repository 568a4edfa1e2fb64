"""Helpers shared by the domain tests: invalid-input assertions, threads, row snapshots, the cache
keys of list pages."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from core.errors import InvalidInput, translate
from tasks import cache as task_cache
from tasks.models import Task

TASK_COLUMNS = tuple(field.attname for field in Task._meta.concrete_fields)


def invalid_fields(exc: BaseException) -> dict[str, list[str]]:
    """The field errors an adapter would show for `exc` (services may raise Django's ValidationError,
    which every adapter turns into InvalidInput through `core.errors.translate`)."""
    error = translate(exc)
    assert isinstance(error, InvalidInput), f"{exc!r} is not invalid input"
    fields = error.extra.get("fields")
    assert isinstance(fields, dict), f"{exc!r} names no field"
    assert all(messages for messages in fields.values()), fields
    return fields


@contextmanager
def raises_invalid(*fields: str) -> Iterator[pytest.ExceptionInfo[Exception]]:
    """Expect InvalidInput (or Django's ValidationError) naming exactly `fields`."""
    with pytest.raises((InvalidInput, ValidationError)) as info:
        yield info
    assert set(invalid_fields(info.value)) == set(fields)


def columns(task: Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in TASK_COLUMNS}


def stored(task_or_id: Task | Any) -> dict[str, Any]:
    """The row as it is in the database now."""
    pk = task_or_id.pk if isinstance(task_or_id, Task) else task_or_id
    return columns(Task.objects.get(pk=pk))


def run_concurrently(count: int, func: Callable[[int], Any], *, timeout: float = 30) -> list[Any]:
    """Run func(0..count-1) in `count` threads released together; return each result or exception.

    Every thread closes its own database connection at the end (Django opens one per thread).
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = func(index)
        except BaseException as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def expected_order(tasks: Iterable[Task], ordering: str) -> list[Any]:
    """The ids of `tasks` in `ordering`, as docs/domain.md and tasks.pagination define it: the id breaks
    ties (in the ordering's direction) and a NULL due date comes last in both directions."""
    field = ordering.lstrip("-")
    descending = ordering.startswith("-")
    rows = list(tasks)
    present = sorted(
        (t for t in rows if getattr(t, field) is not None), key=lambda t: (getattr(t, field), t.pk), reverse=descending
    )
    missing = sorted((t for t in rows if getattr(t, field) is None), key=lambda t: t.pk, reverse=descending)
    return [t.pk for t in [*present, *missing]]


def page_keys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The cache keys of the list pages read from here on, in order (`tasks.cache.page_key`, spied on)."""
    keys: list[str] = []
    real = task_cache.page_key

    def spy(scope: str, params: Any) -> tuple[str, str]:
        key, slot = real(scope, params)
        keys.append(key)
        return key, slot

    monkeypatch.setattr(task_cache, "page_key", spy)
    return keys
