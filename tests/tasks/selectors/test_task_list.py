"""task_list: scoping, every filter, invalid filters, orderings, limits and "my tasks"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import InvalidInput
from core.types import Actor
from tasks.models import Priority, Status, Task
from tasks.pagination import DEFAULT_LIMIT, ORDERINGS
from tasks.selectors import ROW_INDEX, task_list, task_list_rows
from tests.tasks.helpers import columns, expected_order, stored

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def tasks(user: Any, other_user: Any, make_task: Callable[..., Task]) -> dict[str, Task]:
    """Five tasks of the user and one of another user that would match most filters."""

    def make(name: str, **fields: Any) -> Task:
        return make_task(title=fields.pop("title"), description=fields.pop("description", ""), **fields)

    done_at = T0 + timedelta(days=1)
    return {
        "milk": make(
            "milk",
            owner=user,
            title="Buy milk",
            priority=Priority.LOW,
            tags=["home", "shop"],
            due_date=datetime(2031, 1, 10, tzinfo=UTC),
            created_at=T0,
        ),
        "mum": make(
            "mum",
            owner=user,
            title="Call mum",
            description="Ask about the MILK order",
            status=Status.IN_PROGRESS,
            priority=Priority.HIGH,
            tags=["family"],
            due_date=None,
            created_at=T0 + timedelta(hours=1),
        ),
        "taxes": make(
            "taxes",
            owner=user,
            title="File taxes",
            status=Status.COMPLETED,
            completed=True,
            completed_at=done_at,
            priority=Priority.HIGH,
            tags=["work", "money"],
            due_date=datetime(2031, 1, 5, tzinfo=UTC),
            created_at=T0 + timedelta(hours=2),
        ),
        "trip": make(
            "trip",
            owner=user,
            title="Plan trip",
            description="Somewhere warm",
            priority=Priority.MEDIUM,
            tags=["travel", "home"],
            due_date=datetime(2031, 2, 1, tzinfo=UTC),
            created_at=T0 + timedelta(hours=3),
        ),
        "report": make(
            "report",
            owner=user,
            title="Write report",
            description="",
            priority=Priority.MEDIUM,
            tags=[],
            due_date=None,
            created_at=T0 + timedelta(hours=4),
        ),
        "foreign": make(
            "foreign",
            owner=other_user,
            title="Buy milk too",
            priority=Priority.LOW,
            tags=["home"],
            due_date=datetime(2031, 1, 7, tzinfo=UTC),
            created_at=T0 + timedelta(hours=5),
        ),
    }


def names(tasks: dict[str, Task], page: Any) -> set[str]:
    by_id = {task.pk: name for name, task in tasks.items()}
    ids = [task.pk for task in page.items]
    assert len(ids) == len(set(ids)), "duplicates in one page"
    return {by_id[pk] for pk in ids}


MINE = {"milk", "mum", "taxes", "trip", "report"}


# -- scope ---------------------------------------------------------------------------------------------------


def test_user_lists_only_own_tasks(actor: Actor, tasks: dict[str, Task]) -> None:
    page = task_list(actor=actor)
    assert names(tasks, page) == MINE
    assert (page.next_cursor, page.previous_cursor) == (None, None)


def test_listed_tasks_carry_every_column(actor: Actor, tasks: dict[str, Task]) -> None:
    for _ in range(2):  # from the database, then from the cache
        for task in task_list(actor=actor).items:
            assert columns(task) == stored(task)


@pytest.mark.parametrize(
    "kwargs", [{}, {"mine": True}, {"filters": {"search": "m"}, "ordering": "priority", "limit": 2}]
)
def test_rows_are_the_pages_columns(manager_actor: Actor, tasks: dict[str, Task], kwargs: dict[str, Any]) -> None:
    for _ in range(2):  # from the database, then from the cache
        page, rows = task_list(actor=manager_actor, **kwargs), task_list_rows(actor=manager_actor, **kwargs)
        assert [{name: row[index] for name, index in ROW_INDEX.items()} for row in rows.rows] == [
            stored(task) | {"id": str(task.pk)}
            for task in page.items  # a row keeps the id as its text
        ]
        assert (rows.next_cursor, rows.previous_cursor) == (page.next_cursor, page.previous_cursor)


def test_other_user_lists_only_theirs(other_actor: Actor, tasks: dict[str, Task]) -> None:
    assert names(tasks, task_list(actor=other_actor)) == {"foreign"}


def test_manager_lists_everything(manager_actor: Actor, tasks: dict[str, Task]) -> None:
    assert names(tasks, task_list(actor=manager_actor)) == {*MINE, "foreign"}


def test_manager_mine_lists_only_own(
    manager_actor: Actor, manager: Any, tasks: dict[str, Task], make_task: Any
) -> None:
    own = make_task(owner=manager, title="Manage")
    assert len(task_list(actor=manager_actor).items) == 7  # cached "all" page first: mine must not reuse it
    assert [t.pk for t in task_list(actor=manager_actor, mine=True).items] == [own.pk]
    assert [t.pk for t in task_list(actor=manager_actor, mine=True, filters={"search": "manage"}).items] == [own.pk]


def test_mine_for_a_user_is_the_same_as_the_default(actor: Actor, tasks: dict[str, Task]) -> None:
    assert names(tasks, task_list(actor=actor, mine=True)) == MINE


def test_viewer_lists_own(viewer: Any, viewer_actor: Actor, tasks: dict[str, Task], make_task: Any) -> None:
    own = make_task(owner=viewer)
    assert [t.pk for t in task_list(actor=viewer_actor).items] == [own.pk]


def test_empty_list(actor: Actor) -> None:
    page = task_list(actor=actor)
    assert (page.items, page.next_cursor, page.previous_cursor) == ([], None, None)


# -- filters -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "todo"}, {"milk", "trip", "report"}),
        ({"status": "in_progress"}, {"mum"}),
        ({"status": "completed"}, {"taxes"}),
        ({"priority": "low"}, {"milk"}),
        ({"priority": "medium"}, {"trip", "report"}),
        ({"priority": "high"}, {"mum", "taxes"}),
        ({"completed": "true"}, {"taxes"}),
        ({"completed": "1"}, {"taxes"}),
        ({"completed": True}, {"taxes"}),
        ({"completed": "false"}, {"milk", "mum", "trip", "report"}),
        ({"completed": "0"}, {"milk", "mum", "trip", "report"}),
        ({"completed": False}, {"milk", "mum", "trip", "report"}),
        ({"tag": "home"}, {"milk", "trip"}),
        ({"tag": "HOME"}, {"milk", "trip"}),
        ({"tag": "  Home "}, {"milk", "trip"}),
        ({"tag": "family"}, {"mum"}),
        ({"tag": "hom"}, set()),
        ({"tag": "nope"}, set()),
        ({"due_before": "2031-01-09T00:00:00Z"}, {"taxes"}),
        ({"due_before": "2031-01-10T00:00:01+00:00"}, {"taxes", "milk"}),
        ({"due_after": "2031-01-06T00:00:00Z"}, {"milk", "trip"}),
        ({"due_after": "2031-01-06T00:00:00Z", "due_before": "2031-01-31T00:00:00Z"}, {"milk"}),
        ({"due_after": "2031-01-06T01:00:00+01:00"}, {"milk", "trip"}),
        ({"due_before": "2030-01-01T00:00:00Z"}, set()),
        ({"search": "milk"}, {"milk", "mum"}),
        ({"search": "MiLk"}, {"milk", "mum"}),
        ({"search": "  milk  "}, {"milk", "mum"}),
        ({"search": "warm"}, {"trip"}),
        ({"search": "PLAN TRIP"}, {"trip"}),
        ({"search": "zzz"}, set()),
        ({"status": "todo", "tag": "home"}, {"milk", "trip"}),
        ({"priority": "low", "tag": "home"}, {"milk"}),
        ({"completed": "false", "search": "milk"}, {"milk", "mum"}),
        ({"status": None, "priority": None}, MINE),  # None is an absent filter (GraphQL's null)
        ({"search": ""}, MINE),  # blank text is in every text
        ({"search": "   "}, MINE),
        ({}, MINE),
        (None, MINE),
    ],
)
def test_filters(actor: Actor, tasks: dict[str, Task], filters: dict[str, Any] | None, expected: set[str]) -> None:
    assert names(tasks, task_list(actor=actor, filters=filters)) == expected


def test_due_date_filters_accept_datetimes(actor: Actor, tasks: dict[str, Task]) -> None:
    page = task_list(actor=actor, filters={"due_before": datetime(2031, 1, 9, tzinfo=UTC)})
    assert names(tasks, page) == {"taxes"}


def test_filters_apply_to_a_managers_whole_view(manager_actor: Actor, tasks: dict[str, Task]) -> None:
    assert names(tasks, task_list(actor=manager_actor, filters={"tag": "HOME"})) == {"milk", "trip", "foreign"}
    assert names(tasks, task_list(actor=manager_actor, filters={"search": "milk"})) == {"milk", "mum", "foreign"}


@pytest.mark.parametrize(
    "filters",
    [
        {"status": "done"},
        {"status": "TODO"},
        {"priority": "urgent"},
        {"priority": "3"},
        {"completed": "yes"},
        {"completed": "maybe"},
        {"due_before": "tomorrow"},
        {"due_after": "2031-13-01T00:00:00Z"},
        {"due_before": "0001-01-01T00:00:00+05:00"},
        {"due_after": "9999-12-31T23:00:00-05:00"},
        {"tag": "x" * 51},
        {"search": "x" * 201},
        # Naive: refused as in a write, never read in the server's time zone.
        {"due_before": "2030-01-01T00:00:00"},
        {"due_after": datetime(2030, 1, 1)},  # noqa: DTZ001 - the point
        # Well-formed text naming no time.
        {"due_before": "2030-02-30T00:00:00Z"},
        {"due_before": "2030-01-01T25:00:00Z"},
        {"due_after": "2030-01-01T00:00:00+25:00"},
        # An empty value is not an absent filter.
        {"status": ""},
        {"priority": ""},
        {"completed": ""},
        {"tag": ""},
        {"tag": "   "},
        {"due_before": ""},
        {"tag": "a\x00b"},
        {"search": "a\x00b"},
    ],
)
def test_invalid_filter_value_names_the_filter(actor: Actor, tasks: dict[str, Task], filters: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        task_list(actor=actor, filters=filters)
    assert set(info.value.extra["fields"]) == set(filters)
    assert all(info.value.extra["fields"].values())


def test_every_invalid_filter_is_named(actor: Actor) -> None:
    with pytest.raises(InvalidInput) as info:
        task_list(actor=actor, filters={"status": "done", "priority": "urgent", "tag": "ok"})
    assert set(info.value.extra["fields"]) == {"status", "priority"}


@pytest.mark.parametrize(
    "filters",
    [{"colour": "red"}, {"owner": "1"}, {"title": "x"}, {"ordering": "priority"}, {"Status": "todo"}],
)
def test_unknown_filter_is_rejected(actor: Actor, tasks: dict[str, Task], filters: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        task_list(actor=actor, filters=filters)
    assert info.value.extra["fields"] == {name: ["Unknown filter."] for name in filters}


def test_every_unknown_filter_is_named(actor: Actor) -> None:
    with pytest.raises(InvalidInput) as info:
        task_list(actor=actor, filters={"colour": "red", "size": "xl", "status": "todo"})
    assert set(info.value.extra["fields"]) == {"colour", "size"}


def test_invalid_filter_is_rejected_again_and_again(actor: Actor, tasks: dict[str, Task]) -> None:
    """An error is never cached as a page."""
    for _ in range(2):
        with pytest.raises(InvalidInput):
            task_list(actor=actor, filters={"status": "done"})
    assert names(tasks, task_list(actor=actor, filters={"status": "todo"})) == {"milk", "trip", "report"}


# -- ordering ------------------------------------------------------------------------------------------------


@pytest.fixture
def ordered(user: Any, make_task: Callable[..., Task]) -> list[Task]:
    """Tasks with ties in every ordering column and some without a due date."""
    spec = [
        (T0, Priority.HIGH, T0 + timedelta(days=3)),
        (T0 + timedelta(minutes=1), Priority.LOW, None),
        (T0 + timedelta(minutes=1), Priority.MEDIUM, T0 + timedelta(days=1)),
        (T0 + timedelta(minutes=2), Priority.HIGH, T0 + timedelta(days=3)),
        (T0 + timedelta(minutes=3), Priority.LOW, None),
        (T0 + timedelta(minutes=4, microseconds=1), Priority.MEDIUM, T0 + timedelta(days=2)),
        (T0 + timedelta(minutes=5), Priority.MEDIUM, T0 + timedelta(days=2, microseconds=500)),
        (T0 - timedelta(minutes=5), Priority.LOW, T0 - timedelta(days=1)),
    ]
    return [
        make_task(owner=user, created_at=created, priority=priority, due_date=due) for created, priority, due in spec
    ]


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_each_ordering(actor: Actor, ordered: list[Task], ordering: str) -> None:
    page = task_list(actor=actor, ordering=ordering)
    assert [t.pk for t in page.items] == expected_order(ordered, ordering)


def test_default_ordering_is_newest_first(actor: Actor, ordered: list[Task]) -> None:
    assert [t.pk for t in task_list(actor=actor).items] == expected_order(ordered, "-created_at")
    assert [t.pk for t in task_list(actor=actor, ordering=None).items] == expected_order(ordered, "-created_at")


def test_priority_orders_high_medium_low(actor: Actor, ordered: list[Task]) -> None:
    ranks = [t.priority for t in task_list(actor=actor, ordering="-priority").items]
    assert ranks == sorted(ranks, reverse=True)
    assert [Priority(r).label for r in dict.fromkeys(ranks)] == ["high", "medium", "low"]
    ascending = [Priority(t.priority).label for t in task_list(actor=actor, ordering="priority").items]
    assert list(dict.fromkeys(ascending)) == ["low", "medium", "high"]


@pytest.mark.parametrize("ordering", ["due_date", "-due_date"])
def test_tasks_without_due_date_come_last(actor: Actor, ordered: list[Task], ordering: str) -> None:
    dues = [t.due_date for t in task_list(actor=actor, ordering=ordering).items]
    assert dues[-2:] == [None, None]
    assert None not in dues[:-2]
    assert dues[:-2] == sorted(dues[:-2], reverse=ordering.startswith("-"))  # type: ignore[type-var]


@pytest.mark.parametrize("ordering", ["title", "-updated_at", "created", "priority,created_at", "?", "-", ""])
def test_unknown_ordering_is_rejected(actor: Actor, ordering: str) -> None:
    with pytest.raises(InvalidInput) as info:
        task_list(actor=actor, ordering=ordering)
    assert set(info.value.extra["fields"]) == {"ordering"}


# -- limit ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, 101, 1000, "10", 2.5, True, False])
def test_limit_out_of_bounds_or_not_an_integer(actor: Actor, limit: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        task_list(actor=actor, limit=limit)
    assert set(info.value.extra["fields"]) == {"limit"}


def test_limit_bounds(actor: Actor, user: Any, make_task: Callable[..., Task]) -> None:
    make_task.create_batch(105, owner=user)
    assert len(task_list(actor=actor, limit=1).items) == 1
    assert len(task_list(actor=actor, limit=100).items) == 100
    assert len(task_list(actor=actor).items) == DEFAULT_LIMIT
    assert task_list(actor=actor, limit=100).next_cursor is not None


def test_limit_equal_to_the_count_has_no_next_page(actor: Actor, ordered: list[Task]) -> None:
    page = task_list(actor=actor, limit=len(ordered))
    assert len(page.items) == len(ordered)
    assert page.next_cursor is None
    assert task_list(actor=actor, limit=len(ordered) - 1).next_cursor is not None
