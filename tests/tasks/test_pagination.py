"""Cursor pagination of task_list (tasks.pagination): full walks both ways in every ordering, bad cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import InvalidInput
from core.types import Actor
from tasks.models import Priority, Task
from tasks.pagination import ORDERINGS, Page, parse_limit
from tasks.selectors import task_list
from tests.tasks.helpers import expected_order

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def mixed(user: Any, make_task: Callable[..., Task]) -> list[Task]:
    """13 tasks with runs of equal values in every ordering column and 5 without a due date."""
    created = [T0, T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1, microseconds=1)]
    dues = [None, T0, T0, None, T0 + timedelta(days=1), None, T0 + timedelta(days=1, microseconds=250_000), None]
    priorities = [Priority.HIGH, Priority.HIGH, Priority.LOW, Priority.MEDIUM, Priority.MEDIUM, Priority.HIGH]
    return [
        make_task(
            owner=user,
            title=f"task {n}",
            created_at=created[n % len(created)] + timedelta(minutes=n // 7),
            due_date=dues[n % len(dues)],
            priority=priorities[n % len(priorities)],
        )
        for n in range(13)
    ]


def walk_forward(actor: Actor, ordering: str, limit: int, **kwargs: Any) -> list[Page]:
    pages = [task_list(actor=actor, ordering=ordering, limit=limit, **kwargs)]
    assert pages[0].previous_cursor is None
    while pages[-1].next_cursor:
        pages.append(task_list(actor=actor, ordering=ordering, limit=limit, cursor=pages[-1].next_cursor, **kwargs))
        assert len(pages) < 50, "the walk does not end"
    return pages


def ids(pages: list[Page]) -> list[Any]:
    return [task.pk for page in pages for task in page.items]


@pytest.mark.parametrize("limit", [1, 4, 13])
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_walk_forward_then_back(actor: Actor, mixed: list[Task], ordering: str, limit: int) -> None:
    expected = expected_order(mixed, ordering)

    forward = walk_forward(actor, ordering, limit)
    assert ids(forward) == expected  # no duplicates, no gaps, right order
    assert all(len(page.items) == limit for page in forward[:-1])
    assert forward[-1].next_cursor is None
    assert all(page.previous_cursor for page in forward[1:])

    backward = [forward[-1]]
    while backward[-1].previous_cursor:
        backward.append(task_list(actor=actor, ordering=ordering, limit=limit, cursor=backward[-1].previous_cursor))
        assert len(backward) < 50, "the walk does not end"
    backward.reverse()
    assert ids(backward) == expected
    assert [[t.pk for t in p.items] for p in backward] == [[t.pk for t in p.items] for p in forward]

    # A page reached backwards leads forward to the page after it.
    for page, following in zip(backward[:-1], forward[1:], strict=True):
        assert page.next_cursor
        again = task_list(actor=actor, ordering=ordering, limit=limit, cursor=page.next_cursor)
        assert [t.pk for t in again.items] == [t.pk for t in following.items]


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_walk_with_a_filter(actor: Actor, mixed: list[Task], ordering: str) -> None:
    high = [t for t in mixed if t.priority == Priority.HIGH]
    pages = walk_forward(actor, ordering, 2, filters={"priority": "high"})
    assert ids(pages) == expected_order(high, ordering)


@pytest.mark.parametrize("ordering", ["due_date", "-due_date"])
def test_the_earliest_and_latest_due_dates_sort_before_the_tasks_without_one(
    actor: Actor, user: Any, make_task: Callable[..., Task], ordering: str
) -> None:
    """PostgreSQL sorts a missing due date as a date past every other (tasks.pagination, `_NULL_DUE`):
    the first and last instants a due date can hold still come before the tasks without one, in
    both directions, walked one task a page."""
    dues = [None, datetime(1, 1, 1, tzinfo=UTC), None, datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), T0]
    tasks = [make_task(owner=user, title=f"edge {n}", due_date=due) for n, due in enumerate(dues * 2)]
    expected = expected_order(tasks, ordering)
    forward = walk_forward(actor, ordering, 1)
    assert ids(forward) == expected
    backward = [forward[-1]]
    while backward[-1].previous_cursor:
        backward.append(task_list(actor=actor, ordering=ordering, limit=1, cursor=backward[-1].previous_cursor))
        assert len(backward) < 20, "the walk does not end"
    assert ids(backward[::-1]) == expected


def test_pages_are_stable_under_inserts_and_deletes(actor: Actor, user: Any, mixed: list[Task], make_task: Any) -> None:
    ordering = "created_at"
    expected = expected_order(mixed, ordering)
    first = task_list(actor=actor, ordering=ordering, limit=4)
    # A task that sorts before the cursor and the deletion of a seen task do not shift the next page.
    make_task(owner=user, created_at=T0 - timedelta(days=1))
    Task.objects.filter(pk=expected[0]).delete()
    second = task_list(actor=actor, ordering=ordering, limit=4, cursor=first.next_cursor)
    assert [t.pk for t in second.items] == expected[4:8]


def test_the_walk_covers_only_the_actors_tasks(
    actor: Actor, mixed: list[Task], other_user: Any, make_task: Any
) -> None:
    make_task.create_batch(5, owner=other_user, created_at=T0)
    assert ids(walk_forward(actor, "created_at", 3)) == expected_order(mixed, "created_at")


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_cursor_of_another_ordering_is_rejected(actor: Actor, mixed: list[Task]) -> None:
    for ordering in ORDERINGS:
        cursor = task_list(actor=actor, ordering=ordering, limit=2).next_cursor
        assert cursor
        for other in ORDERINGS:
            if other == ordering:
                continue
            with pytest.raises(InvalidInput) as info:
                task_list(actor=actor, ordering=other, limit=2, cursor=cursor)
            assert set(info.value.extra["fields"]) == {"cursor"}


def test_default_ordering_rejects_a_cursor_of_another(actor: Actor, mixed: list[Task]) -> None:
    cursor = task_list(actor=actor, ordering="priority", limit=2).next_cursor
    with pytest.raises(InvalidInput):
        task_list(actor=actor, limit=2, cursor=cursor)


GOOD_ID = "5c0b5b64-8f0e-4f58-9a34-1a2b3c4d5e6f"


@pytest.mark.parametrize(
    ("ordering", "cursor"),
    [
        ("-created_at", "garbage"),
        ("-created_at", "!!!!"),
        ("-created_at", "é"),
        ("-created_at", "eyJv"),
        ("-created_at", _cursor([1, 2])),
        ("-created_at", _cursor("text")),
        ("-created_at", _cursor({"o": "-created_at", "v": "2030-06-01T12:00:00+00:00", "i": GOOD_ID})),
        ("-created_at", _cursor({"o": "-created_at", "f": "yes", "v": "2030-06-01T12:00:00+00:00", "i": GOOD_ID})),
        ("-created_at", _cursor({"o": "-created_at", "f": True, "v": "2030-06-01T12:00:00+00:00"})),
        ("-created_at", _cursor({"o": "-created_at", "f": True, "i": GOOD_ID})),
        ("-created_at", _cursor({"o": "-created_at", "f": True, "v": "not a date", "i": GOOD_ID})),
        ("-created_at", _cursor({"o": "-created_at", "f": True, "v": "2030-06-01T12:00:00", "i": GOOD_ID})),
        ("-created_at", _cursor({"o": "-created_at", "f": True, "v": 5, "i": GOOD_ID})),
        ("-created_at", _cursor({"o": "-created_at", "f": True, "v": "2030-06-01T12:00:00+00:00", "i": "nope"})),
        ("priority", _cursor({"o": "priority", "f": True, "v": "high", "i": GOOD_ID})),
        ("priority", _cursor({"o": "priority", "f": True, "v": True, "i": GOOD_ID})),
        ("priority", _cursor({"o": "priority", "f": True, "v": 2.5, "i": GOOD_ID})),
        ("due_date", _cursor({"o": "due_date", "f": False, "v": [], "i": GOOD_ID})),
        # Null is a position in the due date's NULL group only: no other column has one. Taken as one,
        # it gave an empty page forward and the whole list backward.
        ("created_at", _cursor({"o": "created_at", "f": True, "v": None, "i": GOOD_ID})),
        ("-created_at", _cursor({"o": "-created_at", "f": False, "v": None, "i": GOOD_ID})),
        ("priority", _cursor({"o": "priority", "f": False, "v": None, "i": GOOD_ID})),
        ("-priority", _cursor({"o": "-priority", "f": True, "v": None, "i": GOOD_ID})),
        ("due_date", _cursor({"o": "due_date", "f": True, "v": "0001-01-01T00:00:00+05:00", "i": GOOD_ID})),
        # Nested deeper than the JSON decoder's stack: a RecursionError, not a 500.
        ("-created_at", base64.urlsafe_b64encode(b"[" * 1000 + b"]" * 1000).decode()),
        # Longer than any cursor made here: refused before it is decoded.
        (
            "-created_at",
            _cursor({"o": "-created_at", "f": True, "v": "2030-06-01T12:00:00+00:00", "i": GOOD_ID, "x": "y" * 400}),
        ),
    ],
)
def test_garbage_cursor_is_rejected(actor: Actor, mixed: list[Task], ordering: str, cursor: str) -> None:
    with pytest.raises(InvalidInput) as info:
        task_list(actor=actor, ordering=ordering, cursor=cursor)
    assert set(info.value.extra["fields"]) == {"cursor"}


def test_hand_made_cursor_of_the_right_shape_works(actor: Actor, mixed: list[Task]) -> None:
    """Cursors are opaque but not secret: one naming a real position continues after it."""
    expected = expected_order(mixed, "priority")
    first = Task.objects.get(pk=expected[0])
    cursor = _cursor({"o": "priority", "f": True, "v": int(first.priority), "i": str(first.pk)})
    page = task_list(actor=actor, ordering="priority", limit=3, cursor=cursor)
    assert [t.pk for t in page.items] == expected[1:4]


def test_cursor_past_the_end_gives_an_empty_page(actor: Actor, mixed: list[Task]) -> None:
    expected = expected_order(mixed, "created_at")
    last = Task.objects.get(pk=expected[-1])
    cursor = _cursor({"o": "created_at", "f": True, "v": last.created_at.isoformat(), "i": str(last.pk)})
    page = task_list(actor=actor, ordering="created_at", cursor=cursor)
    assert (page.items, page.next_cursor) == ([], None)


def test_a_previous_cursor_is_refused_where_pages_go_forward_only(actor: Actor, mixed: list[Task]) -> None:
    """GraphQL's `after` and gRPC's page token take only next-page cursors: a `previous` cursor would
    list the tasks before its position, the pages already seen."""
    second = task_list(actor=actor, limit=4, cursor=task_list(actor=actor, limit=4).next_cursor)
    assert second.previous_cursor is not None and second.next_cursor is not None
    with pytest.raises(InvalidInput) as info:
        task_list(actor=actor, limit=4, cursor=second.previous_cursor, forward_only=True)
    assert set(info.value.extra["fields"]) == {"cursor"}
    # A next cursor is as good there as anywhere; REST takes both.
    page = task_list(actor=actor, limit=4, cursor=second.next_cursor, forward_only=True)
    assert page.items == task_list(actor=actor, limit=4, cursor=second.next_cursor).items
    assert task_list(actor=actor, limit=4, cursor=second.previous_cursor).items


@pytest.mark.parametrize(("text", "limit"), [("7", 7), ("007", 7), ("0" * 5000 + "5", 5), ("100", 100), ("0100", 100)])
def test_parse_limit_reads_digits(text: str, limit: int) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["1" * 4301, "9" * 10_000, "1000", "5" + "0" * 4300, "-1", "1.0", "\u0661"])
def test_parse_limit_refuses_what_is_no_page_size(text: str) -> None:
    """Past 4,300 digits int() raises ValueError (a 500 before): a long number is out of range anyway."""
    with pytest.raises(InvalidInput) as info:
        parse_limit(text)
    assert set(info.value.extra["fields"]) == {"limit"}
