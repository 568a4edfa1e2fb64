"""Lists: filters, the six orderings, cursor pagination, search and "my tasks" (docs/domain.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.contract.drivers import Driver, Page

pytestmark = pytest.mark.django_db

ORDERINGS = ["created_at", "-created_at", "due_date", "-due_date", "priority", "-priority"]
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3}


def day(month: int, day: int) -> datetime:
    return datetime(2030, month, day, 12, 0, tzinfo=UTC)


# Created in this order, so created_at orders them as listed.
SEED: list[dict[str, Any]] = [
    {
        "title": "Write report",
        "description": "Quarterly numbers",
        "priority": "high",
        "status": "in_progress",
        "due_date": day(1, 10),
        "tags": ["work", "urgent"],
    },
    {"title": "Buy milk", "priority": "low", "status": "completed", "tags": ["home"]},
    {"title": "Plan trip", "description": "Book the REPORTED hotel", "due_date": day(2, 1), "tags": ["Home", "travel"]},
    {"title": "Fix bike", "priority": "low", "completed": True, "due_date": day(1, 20)},
    {"title": "Call mum", "priority": "high", "tags": ["family"]},
    {"title": "Pay taxes", "priority": "medium", "due_date": day(3, 15), "tags": ["home", "money"]},
    {"title": "Water plants", "priority": "low", "due_date": day(1, 15), "tags": ["HOME"]},
]
TITLES = [task["title"] for task in SEED]


def seed(driver: Driver, tasks: list[dict[str, Any]] = SEED) -> list[dict[str, Any]]:
    return [driver.create(task).unwrap() for task in tasks]


def walk(fetch: Any, limit: int) -> list[Page]:
    """Every page of a list, following the next cursor to the end."""
    pages = [fetch(limit=limit, cursor=None).unwrap()]
    while pages[-1].next_cursor is not None:
        pages.append(fetch(limit=limit, cursor=pages[-1].next_cursor).unwrap())
        assert len(pages) <= 20, "the next cursor never ends"
    return pages


def case(filters: dict[str, Any], expected: set[str]) -> Any:
    """A filter case whose test id shows the filters, e.g. `rest-due_after=0110-due_before=0201`."""
    shown = (
        f"{name}={value:%m%d}" if isinstance(value, datetime) else f"{name}={value}" for name, value in filters.items()
    )
    return pytest.param(filters, expected, id="-".join(shown))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        case({"status": "todo"}, {"Plan trip", "Call mum", "Pay taxes", "Water plants"}),
        case({"status": "in_progress"}, {"Write report"}),
        case({"status": "completed"}, {"Buy milk", "Fix bike"}),
        case({"priority": "high"}, {"Write report", "Call mum"}),
        case({"priority": "low"}, {"Buy milk", "Fix bike", "Water plants"}),
        case({"completed": True}, {"Buy milk", "Fix bike"}),
        case({"completed": False}, {"Write report", "Plan trip", "Call mum", "Pay taxes", "Water plants"}),
        case({"tag": "home"}, {"Buy milk", "Plan trip", "Pay taxes", "Water plants"}),
        case({"tag": " HOME "}, {"Buy milk", "Plan trip", "Pay taxes", "Water plants"}),
        case({"tag": "nope"}, set()),
        case({"due_before": day(1, 20)}, {"Write report", "Water plants"}),
        case({"due_after": day(1, 20)}, {"Plan trip", "Pay taxes"}),
        case({"due_after": day(1, 10), "due_before": day(2, 1)}, {"Water plants", "Fix bike"}),
        case({"search": "report"}, {"Write report", "Plan trip"}),
        case({"search": "QUARTERLY"}, {"Write report"}),
        case({"tag": "home", "priority": "low", "completed": False}, {"Water plants"}),
    ],
)
def test_filters(alice: Driver, bob: Driver, filters: dict[str, Any], expected: set[str]) -> None:
    seed(alice)
    seed(bob)  # the same tasks of somebody else never show

    page = alice.list(filters=filters).unwrap()

    assert set(page.titles) == expected
    assert len(page.titles) == len(expected)
    assert page.next_cursor is None


def test_default_order_is_newest_first(alice: Driver) -> None:
    seed(alice)

    assert alice.list().unwrap().titles == TITLES[::-1]


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_ordering(alice: Driver, ordering: str) -> None:
    created = seed(alice)

    items = alice.list(ordering=ordering).unwrap().items

    assert sorted(task["id"] for task in items) == sorted(task["id"] for task in created)
    field, descending = ordering.lstrip("-"), ordering.startswith("-")
    if field == "created_at":
        assert [task["title"] for task in items] == (TITLES[::-1] if descending else TITLES)
    elif field == "priority":  # high > medium > low; ties in any (stable) order
        ranks = [PRIORITY_RANK[task["priority"]] for task in items]
        assert ranks == sorted(ranks, reverse=descending)
        assert items[0]["priority"] == ("high" if descending else "low")
    else:  # tasks without a due date come last in both directions
        dues = [task["due_date"] for task in items]
        dated = [due for due in dues if due is not None]
        assert dues == sorted(dated, reverse=descending) + [None] * (len(dues) - len(dated))
        assert dues[0] == (day(3, 15) if descending else day(1, 10))


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_pagination_to_the_end_without_duplicates_or_gaps(alice: Driver, ordering: str) -> None:
    seed(alice)
    everything = alice.list(ordering=ordering, limit=100).unwrap()

    pages = walk(lambda **kw: alice.list(ordering=ordering, **kw), limit=2)

    assert [len(page.items) for page in pages] == [2, 2, 2, 1]
    walked = [task_id for page in pages for task_id in page.ids]
    assert len(walked) == len(set(walked)) == len(SEED)
    assert walked == everything.ids


def test_pagination_of_filtered_lists(alice: Driver) -> None:
    seed(alice)

    pages = walk(lambda **kw: alice.list(filters={"tag": "home"}, ordering="due_date", **kw), limit=3)

    assert [page.titles for page in pages] == [["Water plants", "Plan trip", "Pay taxes"], ["Buy milk"]]


def test_a_full_last_page_has_no_next_cursor(alice: Driver) -> None:
    seed(alice, SEED[:4])

    pages = walk(lambda **kw: alice.list(**kw), limit=2)

    assert [len(page.items) for page in pages] == [2, 2]


def test_an_empty_list(alice: Driver) -> None:
    page = alice.list().unwrap()

    assert page.items == [] and page.next_cursor is None


def test_search_matches_title_or_description_case_insensitively(alice: Driver, bob: Driver) -> None:
    seed(alice)
    bob.create({"title": "Bob's report"}).unwrap()

    assert set(alice.search("RePoRt").unwrap().titles) == {"Write report", "Plan trip"}
    assert alice.search("quarterly numbers").unwrap().titles == ["Write report"]
    assert alice.search("hotel").unwrap().titles == ["Plan trip"]
    assert alice.search("nothing like this").unwrap().titles == []
    assert bob.search("report").unwrap().titles == ["Bob's report"]


def test_search_is_case_insensitive_beyond_ascii(alice: Driver) -> None:
    """search is case-insensitive, whatever the database (SQLite's LIKE folds ASCII only)."""
    alice.create({"title": "Café crème", "description": "Évian"}).unwrap()

    assert alice.search("CAFÉ").unwrap().titles == ["Café crème"]
    assert alice.search("évian").unwrap().titles == ["Café crème"]
    assert alice.list(filters={"search": "CRÈME"}).unwrap().titles == ["Café crème"]


def test_search_pages_newest_first(alice: Driver) -> None:
    seed(alice)

    pages = walk(lambda **kw: alice.search("a", **kw), limit=2)

    expected = [title for title in TITLES[::-1] if "a" in title.lower() or title in {"Write report", "Plan trip"}]
    assert [title for page in pages for title in page.titles] == expected


def test_my_tasks_are_only_my_own(alice: Driver, bob: Driver) -> None:
    seed(alice, SEED[:3])
    bob.create({"title": "Bob's"}).unwrap()

    mine = alice.mine().unwrap()
    assert mine.titles == TITLES[:3][::-1]
    assert alice.mine(filters={"priority": "low"}).unwrap().titles == ["Buy milk"]
    pages = walk(lambda **kw: alice.mine(ordering="created_at", **kw), limit=2)
    assert [page.titles for page in pages] == [TITLES[:2], TITLES[2:3]]
