"""Invalid input is `invalid_input` on every protocol, and a refused write changes nothing.

A bad input that a protocol has no form for never reaches its server: the driver reports
NOT_EXPRESSIBLE instead, and only the cases named in the *_NOT_EXPRESSIBLE tables expect that.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.contract.drivers import Driver, refusal

pytestmark = pytest.mark.django_db

NAIVE = datetime(2030, 1, 31, 17, 0)  # noqa: DTZ001 - the point: no time zone
AWARE = datetime(2030, 1, 31, 17, 0, tzinfo=UTC)
TOO_MANY_TAGS = [f"tag{n}" for n in range(21)]

BAD_WRITES = {
    "blank title": {"title": "   "},
    "empty title": {"title": ""},
    "null title": {"title": None},
    "null description": {"description": None},
    "null priority": {"priority": None},
    "null status": {"status": None},
    "null completed": {"completed": None},
    "null tags": {"tags": None},
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
# The bad inputs a protocol has no form for, by protocol: its driver sends nothing and reports
# NOT_EXPRESSIBLE (drivers.py, GrpcDriver says why for each), and these cases assert exactly that.
# Every other case reaches the server, whose own validation must refuse it.
# proto3 has no null: an unset field is its zero value, another input (drivers.py, GrpcDriver).
NULLS = {case for case in BAD_WRITES if case.startswith("null ")}
CREATES_NOT_EXPRESSIBLE = {"grpc": {"naive due date", "read-only field", "unknown field", *NULLS}}
# An update names `version` and `colour` in its FieldMask, so only the naive time and nulls stay behind.
UPDATES_NOT_EXPRESSIBLE = {"grpc": {"naive due date", *NULLS}}


@pytest.mark.parametrize("case", list(BAD_WRITES), ids=list(BAD_WRITES))
def test_invalid_create_creates_nothing(alice: Driver, case: str) -> None:
    existing = alice.create({"title": "Existing"}).unwrap()
    data = {"title": "New task", **BAD_WRITES[case]}

    outcome = alice.create(data)

    assert outcome.error == refusal(alice, case, CREATES_NOT_EXPRESSIBLE), outcome
    assert alice.list().unwrap().items == [existing]


def test_a_create_without_title_is_invalid(alice: Driver) -> None:
    outcome = alice.create({"description": "no title"})

    assert outcome.error == "invalid_input", outcome
    assert alice.list().unwrap().items == []


@pytest.mark.parametrize("case", list(BAD_WRITES), ids=list(BAD_WRITES))
def test_invalid_update_changes_nothing(alice: Driver, case: str) -> None:
    task = alice.create({"title": "Keep me", "priority": "high", "due_date": AWARE, "tags": ["a"]}).unwrap()

    outcome = alice.update(task["id"], BAD_WRITES[case])

    assert outcome.error == refusal(alice, case, UPDATES_NOT_EXPRESSIBLE), outcome
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
# page_size 0 is proto3's unset value, which tasks.v1 defines as the default page size.
LISTS_NOT_EXPRESSIBLE = {"grpc": {"limit 0"}}


@pytest.mark.parametrize("case", list(BAD_LISTS), ids=list(BAD_LISTS))
def test_invalid_list_arguments(alice: Driver, case: str) -> None:
    alice.create({"title": "One"}).unwrap()
    expected = refusal(alice, case, LISTS_NOT_EXPRESSIBLE)

    assert alice.list(**BAD_LISTS[case]).error == expected
    assert alice.mine(**BAD_LISTS[case]).error == expected


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


BAD_SEARCHES = {
    "limit 0": {"limit": 0},
    "limit 101": {"limit": 101},
    "garbage cursor": {"cursor": "garbage!"},
    "query of 201 characters": {"query": "x" * 201},
}


@pytest.mark.parametrize("case", list(BAD_SEARCHES), ids=list(BAD_SEARCHES))
def test_invalid_search_arguments(alice: Driver, case: str) -> None:
    alice.create({"title": "One"}).unwrap()

    outcome = alice.search(**{"query": "one", **BAD_SEARCHES[case]})

    # On gRPC a search is a ListTasks call, so the list table applies.
    assert outcome.error == refusal(alice, case, LISTS_NOT_EXPRESSIBLE), outcome
