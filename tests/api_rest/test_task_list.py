"""GET /api/v1/tasks and /api/v1/tasks/me: filters, ordering, cursor pages, validation, query counts."""

from __future__ import annotations

import base64
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.cache import safe_cache
from tasks import cache as task_cache
from tasks.models import Priority, Status, Task
from tests.api_rest.helpers import TASK_KEYS, TASKS, assert_problem
from tests.factories import TaskFactory
from tests.tasks.helpers import page_keys

pytestmark = pytest.mark.django_db

BASE = datetime(2030, 1, 1, tzinfo=UTC)


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [task["id"] for task in response.json()["results"]]


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [task["title"] for task in response.json()["results"]]


@pytest.fixture
def tasks(user: Any) -> dict[str, Task]:
    """Five tasks of `user`, created a minute apart in this order."""
    now = timezone.now()

    def make(minute: int, title: str, **fields: Any) -> Task:
        return TaskFactory(owner=user, title=title, created_at=now - timedelta(minutes=60 - minute), **fields)

    return {
        "groceries": make(
            1,
            "Buy milk",
            description="and bread",
            priority=Priority.LOW,
            tags=["home", "shop"],
            due_date=BASE + timedelta(days=1),
        ),
        "report": make(
            2,
            "Quarterly report",
            description="Include MILK prices",
            priority=Priority.HIGH,
            tags=["work"],
            due_date=BASE + timedelta(days=10),
            status=Status.IN_PROGRESS,
        ),
        "done": make(
            3,
            "Old chore",
            description="",
            priority=Priority.MEDIUM,
            tags=["home"],
            status=Status.COMPLETED,
            completed=True,
            completed_at=now,
        ),
        "call": make(4, "Call plumber", description="", priority=Priority.HIGH, due_date=BASE + timedelta(days=5)),
        "read": make(5, "Read book", description="", priority=Priority.MEDIUM, tags=["leisure"]),
    }


def test_page_shape(api: APIClient, tasks: dict[str, Task]) -> None:
    response = api.get(TASKS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    assert body["next"] is None
    assert body["previous"] is None
    assert len(body["results"]) == 5
    assert all(set(task) == TASK_KEYS for task in body["results"])


def test_default_ordering_is_newest_first(api: APIClient, tasks: dict[str, Task]) -> None:
    assert titles(api.get(TASKS)) == ["Read book", "Call plumber", "Old chore", "Quarterly report", "Buy milk"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "todo"}, {"groceries", "call", "read"}),
        ({"status": "in_progress"}, {"report"}),
        ({"status": "completed"}, {"done"}),
        ({"priority": "high"}, {"report", "call"}),
        ({"priority": "low"}, {"groceries"}),
        ({"completed": "true"}, {"done"}),
        ({"completed": "1"}, {"done"}),
        ({"completed": "false"}, {"groceries", "report", "call", "read"}),
        ({"completed": "0"}, {"groceries", "report", "call", "read"}),
        ({"tag": "home"}, {"groceries", "done"}),
        ({"tag": "HOME"}, {"groceries", "done"}),
        ({"tag": "leisure"}, {"read"}),
        ({"tag": "nothing"}, set()),
        ({"due_before": "2030-01-07T00:00:00Z"}, {"groceries", "call"}),
        ({"due_before": "2030-01-06T00:00:00Z"}, {"groceries"}),
        ({"due_after": "2030-01-03T00:00:00Z"}, {"report", "call"}),
        ({"due_after": "2030-01-03T00:00:00Z", "due_before": "2030-01-07T00:00:00Z"}, {"call"}),
        ({"search": "milk"}, {"groceries", "report"}),
        ({"search": "BREAD"}, {"groceries"}),
        ({"search": "plumb"}, {"call"}),
        ({"status": "todo", "priority": "high"}, {"call"}),
        ({"status": "todo", "tag": "home"}, {"groceries"}),
    ],
)
def test_filters(api: APIClient, tasks: dict[str, Task], params: dict, expected: set[str]) -> None:
    names = {str(task.pk): name for name, task in tasks.items()}

    assert {names[task_id] for task_id in ids(api.get(TASKS, params))} == expected


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("created_at", ["groceries", "report", "done", "call", "read"]),
        ("-created_at", ["read", "call", "done", "report", "groceries"]),
        # Tasks without a due date come last in both directions.
        ("due_date", ["groceries", "call", "report", "read", "done"]),
        ("-due_date", ["report", "call", "groceries", "read", "done"]),
        # high > medium > low; ties broken by id in the same direction.
        ("-priority", ["report", "call", "done", "read", "groceries"]),
        ("priority", ["groceries", "done", "read", "call", "report"]),
    ],
)
def test_ordering(api: APIClient, tasks: dict[str, Task], ordering: str, expected: list[str]) -> None:
    names = {str(task.pk): name for name, task in tasks.items()}
    got = [names[task_id] for task_id in ids(api.get(TASKS, {"ordering": ordering}))]

    if "priority" in ordering:
        # Ties (same priority) are ordered by id, which is random: compare the priority groups.
        rank = {name: tasks[name].priority for name in expected}
        assert [rank[name] for name in got] == [rank[name] for name in expected]
        assert sorted(got) == sorted(expected)
    elif ordering.endswith("due_date"):
        assert got[:3] == expected[:3]
        assert set(got[3:]) == {"read", "done"}
    else:
        assert got == expected


def test_limit_caps_the_page_and_gives_a_next_link(api: APIClient, tasks: dict[str, Task]) -> None:
    body = api.get(TASKS, {"limit": 2}).json()

    assert len(body["results"]) == 2
    assert body["next"].startswith("http://testserver/api/v1/tasks?")
    assert "limit=2" in body["next"]
    assert "cursor=" in body["next"]
    assert body["previous"] is None


@pytest.mark.parametrize("ordering", ["-created_at", "created_at", "due_date", "-due_date", "priority", "-priority"])
def test_following_next_then_previous_walks_every_task_once(
    api: APIClient, tasks: dict[str, Task], ordering: str
) -> None:
    everything = ids(api.get(TASKS, {"ordering": ordering, "limit": 100}))

    forward_pages: list[list[str]] = []
    url: str | None = f"{TASKS}?ordering={ordering}&limit=2"
    while url:
        body = api.get(url).json()
        forward_pages.append([task["id"] for task in body["results"]])
        last = body
        url = body["next"]
    assert [task_id for page in forward_pages for task_id in page] == everything
    assert [len(page) for page in forward_pages] == [2, 2, 1]

    backward_pages = [forward_pages[-1]]
    url = last["previous"]
    while url:
        body = api.get(url).json()
        backward_pages.append([task["id"] for task in body["results"]])
        url = body["previous"]
    assert backward_pages[::-1] == forward_pages


def test_next_link_keeps_the_filters(api: APIClient, tasks: dict[str, Task]) -> None:
    first = api.get(TASKS, {"status": "todo", "limit": 2}).json()
    second = api.get(first["next"]).json()

    assert "status=todo" in first["next"]
    assert len(first["results"]) == 2
    assert len(second["results"]) == 1
    assert second["next"] is None
    assert all(task["status"] == "todo" for task in first["results"] + second["results"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"priority": "urgent"}, "priority"),
        ({"completed": "maybe"}, "completed"),
        ({"tag": "x" * 51}, "tag"),
        ({"due_before": "tomorrow"}, "due_before"),
        ({"due_after": "2030-13-45"}, "due_after"),
        ({"search": "s" * 201}, "search"),
        ({"ordering": "title"}, "ordering"),
        ({"ordering": "-id"}, "ordering"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"limit": "²"}, "limit"),  # str.isdigit() says yes, int() says no
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJvIjoiLWNyZWF0ZWRfYXQifQ"}, "cursor"),
    ],
)
def test_invalid_parameters_are_400_naming_the_field(
    api: APIClient, tasks: dict[str, Task], params: dict, field: str
) -> None:
    assert_problem(api.get(TASKS, params), 400, "invalid_input", fields={field})


@pytest.mark.parametrize(
    "query",
    [
        "status=todo&status=completed",
        "status=todo&status=todo",
        "priority=high&priority=low",
        "tag=a&tag=b",
        "search=a&search=b",
        "due_before=2030-01-01T00:00:00Z&due_before=2031-01-01T00:00:00Z",
        "ordering=created_at&ordering=-created_at",
        "limit=1&limit=2",
        "cursor=a&cursor=b",
    ],
)
def test_a_parameter_given_twice_is_400(api: APIClient, tasks: dict[str, Task], query: str) -> None:
    """Which value would count is a guess (docs/domain.md, "List: filters")."""
    name = query.partition("=")[0]

    body = assert_problem(api.get(f"{TASKS}?{query}"), 400, "invalid_input", fields={name})
    assert body["errors"][name] == ["Give this parameter once."]


@pytest.mark.parametrize(
    "name", ["status", "priority", "completed", "tag", "due_before", "due_after", "ordering", "limit", "cursor"]
)
def test_an_empty_parameter_is_400_not_absent(api: APIClient, tasks: dict[str, Task], name: str) -> None:
    assert_problem(api.get(f"{TASKS}?{name}="), 400, "invalid_input", fields={name})


def test_an_empty_search_lists_everything(api: APIClient, tasks: dict[str, Task]) -> None:
    assert len(api.get(f"{TASKS}?search=").json()["results"]) == len(api.get(TASKS).json()["results"]) > 0


@pytest.mark.parametrize("name", ["due_before", "due_after"])
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_date_filter_at_the_edge_of_the_calendar_is_no_server_error(
    api: APIClient, tasks: dict[str, Task], name: str, value: str
) -> None:
    # Valid ISO 8601 whose UTC equivalent leaves year 1..9999: a list (all or nothing) or a 400, never a 500.
    response = api.get(TASKS, {name: value})

    if response.status_code == 400:
        assert_problem(response, 400, "invalid_input", fields={name})
    else:
        assert response.status_code == 200
        assert len(response.json()["results"]) in (0, 3)


@pytest.mark.parametrize(
    "value",
    # The last: an offset PostgreSQL cannot store (beyond ±15:59), once a 500 there.
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2030-01-01T00:00:00+20:00"],
)
def test_a_tampered_cursor_is_no_server_error(api: APIClient, tasks: dict[str, Task], value: str) -> None:
    payload = {"o": "-created_at", "f": True, "v": value, "i": str(tasks["read"].pk)}
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    response = api.get(TASKS, {"cursor": cursor})

    if response.status_code == 400:
        assert_problem(response, 400, "invalid_input", fields={"cursor"})
    else:
        assert response.status_code == 200


def test_a_cursor_of_another_ordering_is_400(api: APIClient, tasks: dict[str, Task]) -> None:
    next_url = api.get(TASKS, {"limit": 2, "ordering": "due_date"}).json()["next"]
    cursor = next_url.split("cursor=")[1].split("&")[0]

    assert_problem(
        api.get(TASKS, {"cursor": cursor, "ordering": "created_at"}), 400, "invalid_input", fields={"cursor"}
    )


def test_limit_100_is_allowed(api: APIClient, tasks: dict[str, Task]) -> None:
    assert len(ids(api.get(TASKS, {"limit": 100}))) == 5


def test_a_limit_of_thousands_of_digits_is_400(api: APIClient, tasks: dict[str, Task]) -> None:
    """int() refuses more than 4,300 digits (a 500 before); such a URL fits a proxy's request line."""
    api.raise_request_exception = False
    assert_problem(api.get(f"{TASKS}?limit={'1' * 4301}"), 400, "invalid_input", fields={"limit"})
    # Leading zeros say nothing: however many, the number is what follows them.
    assert len(ids(api.get(f"{TASKS}?limit={'0' * 4300}2"))) == 2


@pytest.mark.parametrize("path", [TASKS, f"{TASKS}/me"])
@pytest.mark.parametrize("value", ["xml", "yaml", ""], ids=["xml", "yaml", "empty"])
def test_a_format_no_renderer_has_is_400_naming_format(
    api: APIClient, tasks: dict[str, Task], path: str, value: str
) -> None:
    """A bad value of a query parameter, as the list's others (DRF: 404 for an unknown one, and an
    empty one ignored)."""
    response = api.get(f"{path}?format={value}")
    assert_problem(response, 400, "invalid_input", fields={"format"})
    assert response.json()["errors"]["format"] == ["Must be one of: api, json."]
    assert response["Content-Type"] == "application/problem+json"


def test_an_empty_format_is_400_whatever_the_accept_header(api: APIClient, tasks: dict[str, Task]) -> None:
    """A long Accept header is negotiated by DRF itself (not remembered), which ignores an empty format."""
    accept = "application/json, " + ", ".join(f"application/x-type-{n}" for n in range(30))
    assert_problem(api.get(f"{TASKS}?format=", HTTP_ACCEPT=accept), 400, "invalid_input", fields={"format"})


def test_a_format_no_renderer_has_is_judged_after_the_credentials(client: Any) -> None:
    """DRF refused it before authentication: an anonymous `?format=xml` was 404, not 401."""
    assert_problem(client.get(f"{TASKS}?format=xml"), 401, "not_authenticated")


@pytest.mark.parametrize(("value", "media_type"), [("json", "application/json"), ("api", "text/html")])
def test_the_formats_renderers_have_still_choose_them(
    api: APIClient, tasks: dict[str, Task], value: str, media_type: str
) -> None:
    response = api.get(f"{TASKS}?format={value}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(media_type)


def test_list_follows_writes_at_once(api: APIClient, tasks: dict[str, Task]) -> None:
    assert len(ids(api.get(TASKS, {"status": "todo"}))) == 3  # cached

    api.patch(f"{TASKS}/{tasks['call'].pk}", {"status": "completed"}, format="json")
    api.delete(f"{TASKS}/{tasks['read'].pk}")

    assert ids(api.get(TASKS, {"status": "todo"})) == [str(tasks["groceries"].pk)]


def test_a_page_entry_replaced_under_the_same_key_is_served_as_it_now_is(
    api: APIClient, tasks: dict[str, Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list's JSON is remembered per page and checked against the cache entry's bytes: an entry
    another process stored under the same key (same generation) is what the next response holds."""
    keys = page_keys(monkeypatch)
    first = ids(api.get(TASKS, {"status": "todo"}))
    assert ids(api.get(TASKS, {"status": "todo"})) == first and len(first) == 3  # from the memo
    generation, (encoded, next_cursor, previous_cursor) = safe_cache.get(keys[-1])

    safe_cache.set(
        keys[-1], (generation, task_cache.page_entry(pickle.loads(encoded)[1:], next_cursor, previous_cursor))
    )

    assert ids(api.get(TASKS, {"status": "todo"})) == first[1:]
    assert len(set(keys)) == 1


# -- /tasks/me -------------------------------------------------------------------------------------------


def test_me_lists_own_tasks_with_the_same_parameters(api: APIClient, tasks: dict[str, Task], make_task: Any) -> None:
    make_task(title="Someone else's")

    response = api.get(f"{TASKS}/me", {"priority": "high", "ordering": "created_at"})

    assert set(response.json()) == {"results", "next", "previous"}
    assert titles(response) == ["Quarterly report", "Call plumber"]


def test_me_of_a_manager_holds_only_their_own(client_for: Any, manager: Any, tasks: dict[str, Task]) -> None:
    own = TaskFactory(owner=manager, title="Manager's own")
    client = client_for(manager)

    assert ids(client.get(f"{TASKS}/me")) == [str(own.pk)]
    assert len(ids(client.get(TASKS))) == 6


def test_me_rejects_bad_parameters(api: APIClient) -> None:
    assert_problem(api.get(f"{TASKS}/me", {"limit": "500"}), 400, "invalid_input", fields={"limit"})


def test_me_pages_like_the_list(api: APIClient, tasks: dict[str, Task]) -> None:
    first = api.get(f"{TASKS}/me", {"limit": 3}).json()
    second = api.get(first["next"]).json()

    assert first["next"].startswith("http://testserver/api/v1/tasks/me?")
    assert len(first["results"]) + len(second["results"]) == 5
    assert second["previous"] is not None


# -- query counts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TASKS, f"{TASKS}/me"])
def test_a_page_costs_one_query_whatever_its_size(
    api: APIClient, user: Any, django_assert_num_queries: Any, path: str
) -> None:
    Task.objects.bulk_create(
        [Task(owner=user, title=f"t{i}", tags=["bulk"], created_at=BASE + timedelta(seconds=i)) for i in range(60)]
    )

    with django_assert_num_queries(1):
        small = api.get(path, {"limit": 5, "tag": "bulk"})
    with django_assert_num_queries(1):
        large = api.get(path, {"limit": 50, "tag": "bulk"})

    assert len(ids(small)) == 5
    assert len(ids(large)) == 50


def test_a_cached_page_costs_no_query(api: APIClient, tasks: dict[str, Task], django_assert_num_queries: Any) -> None:
    api.get(TASKS, {"limit": 3})

    with django_assert_num_queries(0):
        assert len(ids(api.get(TASKS, {"limit": 3}))) == 3
