"""Invalid input is `invalid_input` on every protocol, and a refused write changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.contract.drivers import Driver

pytestmark = pytest.mark.django_db

NAIVE = datetime(2030, 1, 31, 17, 0)  # noqa: DTZ001 - the point: no time zone
AWARE = datetime(2030, 1, 31, 17, 0, tzinfo=UTC)
TOO_MANY_TAGS = [f"tag{n}" for n in range(21)]

BAD_WRITES = {
    "blank title": {"title": "   "},
    "empty title": {"title": ""},
    "null title": {"title": None},
    "title of 201 characters": {"title": "x" * 201},
    "bad priority": {"priority": "urgent"},
    "bad status": {"status": "done"},
    "21 tags": {"tags": TOO_MANY_TAGS},
    "tag of 51 characters": {"tags": ["x" * 51]},
    "blank tag": {"tags": ["ok", "  "]},
    "naive due date": {"due_date": NAIVE},
    "not a date": {"due_date": "next tuesday"},
    "description of 10001 characters": {"description": "x" * 10_001},
    "completed contradicts status": {"status": "todo", "completed": True},
    "status contradicts completed": {"status": "completed", "completed": False},
    "read-only field": {"version": 7},
    "unknown field": {"colour": "red"},
}


@pytest.mark.parametrize("changes", list(BAD_WRITES.values()), ids=list(BAD_WRITES))
def test_invalid_create_creates_nothing(alice: Driver, changes: dict[str, Any]) -> None:
    existing = alice.create({"title": "Existing"}).unwrap()
    data = {"title": "New task", **changes}

    outcome = alice.create(data)

    assert outcome.error == "invalid_input", outcome
    assert alice.list().unwrap().items == [existing]


def test_a_create_without_title_is_invalid(alice: Driver) -> None:
    outcome = alice.create({"description": "no title"})

    assert outcome.error == "invalid_input", outcome
    assert alice.list().unwrap().items == []


@pytest.mark.parametrize("changes", list(BAD_WRITES.values()), ids=list(BAD_WRITES))
def test_invalid_update_changes_nothing(alice: Driver, changes: dict[str, Any]) -> None:
    task = alice.create({"title": "Keep me", "priority": "high", "due_date": AWARE, "tags": ["a"]}).unwrap()

    outcome = alice.update(task["id"], changes)

    assert outcome.error == "invalid_input", outcome
    assert alice.get(task["id"]).unwrap() == task
    assert alice.list().unwrap().items == [task]


BAD_LISTS = {
    "limit 0": {"limit": 0},
    "limit 101": {"limit": 101},
    "limit -1": {"limit": -1},
    "garbage cursor": {"cursor": "garbage!"},
    "base64 garbage cursor": {"cursor": "eyJvIjoiLWNyZWF0ZWRfYXQifQ"},  # {"o":"-created_at"} only
    "unknown ordering": {"ordering": "title"},
    "bad status filter": {"filters": {"status": "done"}},
    "bad priority filter": {"filters": {"priority": "urgent"}},
    "bad due_before filter": {"filters": {"due_before": "soon"}},
    "tag filter of 51 characters": {"filters": {"tag": "x" * 51}},
    "search filter of 201 characters": {"filters": {"search": "x" * 201}},
}


@pytest.mark.parametrize("arguments", list(BAD_LISTS.values()), ids=list(BAD_LISTS))
def test_invalid_list_arguments(alice: Driver, arguments: dict[str, Any]) -> None:
    alice.create({"title": "One"}).unwrap()

    assert alice.list(**arguments).error == "invalid_input"
    assert alice.mine(**arguments).error == "invalid_input"


def test_limits_at_the_bounds_are_valid(alice: Driver) -> None:
    alice.create({"title": "One"}).unwrap()
    alice.create({"title": "Two"}).unwrap()

    assert alice.list(limit=1).unwrap().titles == ["Two"]
    assert alice.list(limit=100).unwrap().titles == ["Two", "One"]


def test_a_cursor_of_another_ordering_is_invalid(alice: Driver) -> None:
    for title in ("a", "b", "c"):
        alice.create({"title": title}).unwrap()
    cursor = alice.list(ordering="created_at", limit=1).unwrap().next_cursor
    assert cursor is not None

    assert alice.list(ordering="due_date", limit=1, cursor=cursor).error == "invalid_input"
    assert alice.list(ordering="created_at", limit=1, cursor=cursor).unwrap().titles == ["b"]


@pytest.mark.parametrize(
    "arguments",
    [{"limit": 0}, {"limit": 101}, {"cursor": "garbage!"}, {"query": "x" * 201}],
    ids=["limit 0", "limit 101", "garbage cursor", "query of 201 characters"],
)
def test_invalid_search_arguments(alice: Driver, arguments: dict[str, Any]) -> None:
    alice.create({"title": "One"}).unwrap()

    assert alice.search(**{"query": "one", **arguments}).error == "invalid_input"
