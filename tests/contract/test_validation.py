"""Invalid input is `invalid_input` on every protocol, and a refused write changes nothing.

A bad input that a protocol has no form for never reaches its server: the driver reports
NOT_EXPRESSIBLE instead, and only the cases named in the *_NOT_EXPRESSIBLE tables expect that.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tasks.models import NOT_A_TIME_MESSAGE
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
    # Well-formed ISO 8601 text naming no time: each once answered 500 / INTERNAL.
    "day 30 of February": {"due_date": "2030-02-30T10:00:00Z"},
    "year 0": {"due_date": "0000-06-01T10:00:00Z"},
    "hour 25": {"due_date": "2030-06-01T25:00:00Z"},
    "offset +25:00": {"due_date": "2030-06-01T10:00:00+25:00"},
    # PostgreSQL text cannot hold NUL; the domain refuses it before the database sees it.
    "NUL in the title": {"title": "a\x00b"},
    "NUL in the description": {"description": "before\x00after"},
    "NUL in a tag": {"tags": ["ok", "b\x00d"]},
    # A lone surrogate is a legal JSON escape but no character: no database can store it.
    "lone surrogate in the title": {"title": "a\ud800b"},
    "lone surrogate in the description": {"description": "x\udfff"},
    "lone surrogate in a tag": {"tags": ["ok", "\ud83d"]},
}
# The bad inputs a protocol has no form for, by protocol: its driver sends nothing and reports
# NOT_EXPRESSIBLE (drivers.py, GrpcDriver says why for each), and these cases assert exactly that.
# Every other case reaches the server, whose own validation must refuse it.
# proto3 has no null: an unset field is its zero value, another input (drivers.py, GrpcDriver).
NULLS = {case for case in BAD_WRITES if case.startswith("null ")}
SURROGATES = {case for case in BAD_WRITES if case.startswith("lone surrogate ")}
CREATES_NOT_EXPRESSIBLE = {"grpc": {"naive due date", "read-only field", "unknown field", *NULLS, *SURROGATES}}
# An update names `version` and `colour` in its FieldMask, so only the naive time, nulls and surrogates stay behind.
UPDATES_NOT_EXPRESSIBLE = {"grpc": {"naive due date", *NULLS, *SURROGATES}}


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


IMPOSSIBLE_TIMES = {
    "day 30 of February": "2030-02-30T10:00:00Z",
    "year 0": "0000-06-01T10:00:00Z",
    "hour 25": "2030-06-01T25:00:00Z",
    "offset +25:00": "2030-06-01T10:00:00+25:00",
}


@pytest.mark.parametrize("text", list(IMPOSSIBLE_TIMES.values()), ids=list(IMPOSSIBLE_TIMES))
def test_an_impossible_time_is_invalid_input_naming_its_field(alice: Driver, text: str) -> None:
    """Well-formed ISO 8601 text naming no time is refused by the domain's time rule, with the field
    named (docs/domain.md, "Rules"). GraphQL's DateTime once refused it itself, naming no field.
    gRPC has no text for a time: the driver sends a Timestamp that is no instant, refused too."""
    task = alice.create({"title": "Keep me"}).unwrap()

    created = alice.create({"title": "New", "due_date": text})
    updated = alice.update(task["id"], {"due_date": text})
    listed = alice.list(filters={"due_before": text})
    mine = alice.mine(filters={"due_after": text})

    for outcome, name in [(created, "due_date"), (updated, "due_date"), (listed, "due_before"), (mine, "due_after")]:
        assert outcome.error == "invalid_input", outcome
        assert outcome.fields is not None and list(outcome.fields) == [name], outcome
        if alice.protocol != "grpc":
            assert outcome.fields[name] == [NOT_A_TIME_MESSAGE], outcome
    assert alice.list().unwrap().items == [task]


BAD_LISTS = {
    "limit 0": {"limit": 0},
    "limit 101": {"limit": 101},
    "limit -1": {"limit": -1},
    "garbage cursor": {"cursor": "garbage!"},
    "base64 garbage cursor": {"cursor": "eyJvIjoiLWNyZWF0ZWRfYXQifQ"},  # {"o":"-created_at"} only
    # JSON nested deeper than the decoder's stack once escaped as a RecursionError: a 500.
    "deeply nested cursor": {"cursor": base64.urlsafe_b64encode(b"[" * 1000 + b"]" * 1000).decode()},
    "cursor of 513 characters": {"cursor": "e" * 513},
    "unknown ordering": {"ordering": "title"},
    "bad status filter": {"filters": {"status": "done"}},
    "bad priority filter": {"filters": {"priority": "urgent"}},
    "bad due_before filter": {"filters": {"due_before": "soon"}},
    "tag filter of 51 characters": {"filters": {"tag": "x" * 51}},
    "search filter of 201 characters": {"filters": {"search": "x" * 201}},
    # A naive time is refused in a filter as in a write (docs/domain.md, "Rules").
    "naive due_before filter": {"filters": {"due_before": NAIVE}},
    "naive due_after filter": {"filters": {"due_after": NAIVE}},
    "day 30 of February in due_before": {"filters": {"due_before": "2030-02-30T10:00:00Z"}},
    "offset +25:00 in due_after": {"filters": {"due_after": "2030-06-01T10:00:00+25:00"}},
    # An empty value is a bad value, not an absent filter (docs/domain.md, "List: filters").
    "empty status filter": {"filters": {"status": ""}},
    "empty priority filter": {"filters": {"priority": ""}},
    "empty tag filter": {"filters": {"tag": ""}},
    "empty due_before filter": {"filters": {"due_before": ""}},
    "NUL in the tag filter": {"filters": {"tag": "a\x00b"}},
    "NUL in the search filter": {"filters": {"search": "a\x00b"}},
}
# page_size 0 is proto3's unset value, which tasks.v1 defines as the default page size; likewise an
# empty string is an unset `tag`, an enum filter or a Timestamp has no empty value (the driver once sent
# an undefined enum number and an invalid Timestamp, refused for that reason instead), and a Timestamp
# holds no naive time.
EMPTY_FILTERS = {"empty status filter", "empty priority filter", "empty tag filter", "empty due_before filter"}
LISTS_NOT_EXPRESSIBLE = {"grpc": {"limit 0", *EMPTY_FILTERS, "naive due_before filter", "naive due_after filter"}}


@pytest.mark.parametrize("case", list(BAD_LISTS), ids=list(BAD_LISTS))
def test_invalid_list_arguments(alice: Driver, case: str) -> None:
    alice.create({"title": "One"}).unwrap()
    expected = refusal(alice, case, LISTS_NOT_EXPRESSIBLE)

    assert alice.list(**BAD_LISTS[case]).error == expected
    assert alice.mine(**BAD_LISTS[case]).error == expected


# gRPC's page_token "" is the unset token, the first page: no form for an empty cursor.
EMPTY_CURSOR_NOT_EXPRESSIBLE = {"grpc": {"empty cursor"}}


def test_an_empty_cursor_is_invalid_also_once_the_first_page_is_cached(alice: Driver) -> None:
    """The first page (no cursor) once shared its cache entry with the empty cursor: cold, `cursor=`
    was refused; after a first page, it was served that page."""
    alice.create({"title": "One"}).unwrap()
    expected = refusal(alice, "empty cursor", EMPTY_CURSOR_NOT_EXPRESSIBLE)

    assert alice.list().unwrap().titles == ["One"]
    assert alice.mine().unwrap().titles == ["One"]
    assert alice.search("one").unwrap().titles == ["One"]
    assert alice.list(cursor="").error == expected
    assert alice.mine(cursor="").error == expected
    assert alice.search("one", cursor="").error == expected


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


def test_a_filter_offset_beyond_what_postgresql_stores_is_the_same_instant(alice: Driver) -> None:
    """+20:00 is a valid offset that PostgreSQL cannot store (±15:59): the filter compares in UTC."""
    due = alice.create({"title": "Due", "due_date": AWARE}).unwrap()
    far_east = timezone(timedelta(hours=20))

    assert alice.list(filters={"due_before": AWARE.astimezone(far_east) + timedelta(seconds=1)}).unwrap().items == [due]
    assert alice.list(filters={"due_after": AWARE.astimezone(far_east)}).unwrap().items == []
    assert alice.list(filters={"due_after": AWARE.astimezone(timezone(timedelta(hours=-20)))}).unwrap().items == []


BAD_SEARCHES = {
    "limit 0": {"limit": 0},
    "limit 101": {"limit": 101},
    "garbage cursor": {"cursor": "garbage!"},
    "query of 201 characters": {"query": "x" * 201},
    "NUL in the query": {"query": "a\x00b"},
}


@pytest.mark.parametrize("case", list(BAD_SEARCHES), ids=list(BAD_SEARCHES))
def test_invalid_search_arguments(alice: Driver, case: str) -> None:
    alice.create({"title": "One"}).unwrap()

    outcome = alice.search(**{"query": "one", **BAD_SEARCHES[case]})

    # On gRPC a search is a ListTasks call, so the list table applies.
    assert outcome.error == refusal(alice, case, LISTS_NOT_EXPRESSIBLE), outcome


# A task id is the lower-case, hyphenated UUID the server gives out; every other spelling of the
# same UUID names no task (docs/domain.md, "Visibility and roles").
OTHER_SPELLINGS = {
    "upper case": str.upper,
    "no hyphens": lambda task_id: task_id.replace("-", ""),
    "braces": lambda task_id: "{" + task_id + "}",
    "urn": lambda task_id: "urn:uuid:" + task_id,
    "surrounding blanks": lambda task_id: f" {task_id} ",
}


@pytest.mark.parametrize("spell", list(OTHER_SPELLINGS.values()), ids=list(OTHER_SPELLINGS))
def test_another_spelling_of_a_task_id_is_not_found(alice: Driver, spell: Any) -> None:
    task = alice.create({"title": "Keep me"}).unwrap()
    other = spell(task["id"])

    assert alice.get(other).error == "not_found"
    assert alice.update(other, {"title": "Changed"}).error == "not_found"
    assert alice.delete(other).error == "not_found"
    assert alice.get(task["id"]).unwrap() == task
