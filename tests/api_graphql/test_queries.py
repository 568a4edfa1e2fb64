"""Queries: task, tasks (filters, orderings, first/after, walking every page), searchTasks, me, me.tasks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tasks.models import Priority, Status
from tests.api_graphql.conftest import TASK_FIELDS, bearer, data_of, gql, only_error

pytestmark = pytest.mark.django_db

BASE = datetime(2030, 1, 1, tzinfo=UTC)

TASK = "query($id: ID!) { task(id: $id) {" + TASK_FIELDS + "} }"
PAGE = """
query($filters: TaskFilterInput, $ordering: TaskOrdering! = CREATED_AT_DESC, $first: Int, $after: String) {
  tasks(filters: $filters, ordering: $ordering, first: $first, after: $after) {
    edges { cursor node { id title } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
SEARCH = """
query($query: String!, $first: Int, $after: String) {
  searchTasks(query: $query, first: $first, after: $after) {
    edges { node { id title } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def series(make_task: Any, owner: Any, count: int, **fields: Any) -> list[Any]:
    """`count` tasks of `owner`, created one minute apart (the first is the oldest)."""
    return [
        make_task(owner=owner, title=f"task {i}", created_at=BASE + timedelta(minutes=i), **fields)
        for i in range(count)
    ]


def walk(client: Client, headers: dict[str, str], document: str, field: str, **variables: Any) -> list[list[str]]:
    """Follow pageInfo.endCursor until hasNextPage is false; the ids of each page."""
    pages: list[list[str]] = []
    after = None
    while True:
        connection = data_of(gql(client, document, {**variables, "after": after}, **headers))[field]
        pages.append([edge["node"]["id"] for edge in connection["edges"]])
        info = connection["pageInfo"]
        if "hasPreviousPage" in info:
            assert info["hasPreviousPage"] is (after is not None)
        if not info["hasNextPage"]:
            return pages
        after = info["endCursor"]
        assert len(pages) < 50, "pagination does not end"


# -- task(id) ----------------------------------------------------------------------------------------------


def test_task_returns_every_field(client: Client, as_user: dict[str, str], user: Any, make_task: Any) -> None:
    due = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    task = make_task(
        owner=user,
        title="Water the plants",
        description="All of them",
        priority=Priority.HIGH,
        status=Status.IN_PROGRESS,
        due_date=due,
        tags=["home", "garden"],
    )

    node = data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))["task"]

    assert node == {
        "id": str(task.pk),
        "ownerId": user.pk,
        "title": "Water the plants",
        "description": "All of them",
        "priority": "HIGH",
        "status": "IN_PROGRESS",
        "completed": False,
        "dueDate": due.isoformat(),
        "tags": ["home", "garden"],
        "createdAt": task.created_at.isoformat(),
        "updatedAt": task.updated_at.isoformat(),
        "completedAt": None,
        "version": 1,
    }


@pytest.mark.parametrize(
    ("priority", "status", "expected"),
    [
        (Priority.LOW, Status.TODO, ("LOW", "TODO")),
        (Priority.MEDIUM, Status.IN_PROGRESS, ("MEDIUM", "IN_PROGRESS")),
        (Priority.HIGH, Status.COMPLETED, ("HIGH", "COMPLETED")),
    ],
)
def test_enums_are_upper_case(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, priority: Any, status: Any, expected: Any
) -> None:
    completed = status == Status.COMPLETED
    task = make_task(
        owner=user,
        priority=priority,
        status=status,
        completed=completed,
        completed_at=timezone.now() if completed else None,
    )

    document = "query($id: ID!) { task(id: $id) { priority status completed } }"

    node = data_of(gql(client, document, {"id": str(task.pk)}, **as_user))["task"]

    assert (node["priority"], node["status"]) == expected
    assert node["completed"] is completed


def test_datetimes_are_aware_iso_8601(client: Client, as_user: dict[str, str], user: Any, make_task: Any) -> None:
    task = make_task(owner=user, due_date=datetime(2030, 3, 1, 12, tzinfo=UTC))

    node = data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))["task"]

    for name in ("dueDate", "createdAt", "updatedAt"):
        parsed = datetime.fromisoformat(node[name])
        assert parsed.utcoffset() is not None, (name, node[name])
    assert datetime.fromisoformat(node["dueDate"]) == task.due_date


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "not-a-uuid", "123", ""])
def test_unknown_task_is_null_with_not_found(client: Client, as_user: dict[str, str], task_id: str) -> None:
    response = gql(client, TASK, {"id": task_id}, **as_user)

    error = only_error(response, "NOT_FOUND")
    assert error["path"] == ["task"]
    assert response.json()["data"] == {"task": None}


# -- tasks: pagination -------------------------------------------------------------------------------------


def test_tasks_default_page_is_20_newest_first(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    tasks = series(make_task, user, 21)

    connection = data_of(gql(client, PAGE, {}, **as_user))["tasks"]

    assert [edge["node"]["id"] for edge in connection["edges"]] == [str(t.pk) for t in reversed(tasks)][:20]
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["hasPreviousPage"] is False
    assert connection["pageInfo"]["startCursor"] == connection["edges"][0]["cursor"]
    assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]


@pytest.mark.parametrize("first", [1, 3, 7, 100])
def test_walking_pages_with_end_cursor_visits_every_task_once(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, first: int
) -> None:
    tasks = series(make_task, user, 7)

    pages = walk(client, as_user, PAGE, "tasks", first=first)

    assert [len(page) for page in pages] == [len(c) for c in _chunks(list(range(7)), first)]
    assert [task_id for page in pages for task_id in page] == [str(t.pk) for t in reversed(tasks)]


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def test_an_edge_cursor_resumes_right_after_its_node(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    tasks = list(reversed(series(make_task, user, 5)))
    first_page = data_of(gql(client, PAGE, {"first": 5}, **as_user))["tasks"]

    after_second = first_page["edges"][1]["cursor"]
    rest = data_of(gql(client, PAGE, {"first": 5, "after": after_second}, **as_user))["tasks"]

    assert [edge["node"]["id"] for edge in rest["edges"]] == [str(t.pk) for t in tasks[2:]]
    assert rest["pageInfo"]["hasPreviousPage"] is True
    assert rest["pageInfo"]["hasNextPage"] is False


def test_empty_list(client: Client, as_user: dict[str, str]) -> None:
    connection = data_of(gql(client, PAGE, {}, **as_user))["tasks"]

    assert connection == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
    }


# -- tasks: orderings -----------------------------------------------------------------------------------------


@pytest.fixture
def ordered_tasks(user: Any, make_task: Any) -> list[Any]:
    specs = [
        (Priority.LOW, BASE + timedelta(days=3)),
        (Priority.HIGH, None),
        (Priority.MEDIUM, BASE + timedelta(days=1)),
        (Priority.HIGH, BASE + timedelta(days=2)),
        (Priority.LOW, None),
        (Priority.MEDIUM, BASE + timedelta(days=1)),  # ties the third on due date
    ]
    return [
        make_task(owner=user, title=f"t{i}", priority=p, due_date=due, created_at=BASE + timedelta(minutes=i))
        for i, (p, due) in enumerate(specs)
    ]


def _expected(tasks: list[Any], ordering: str) -> list[str]:
    field = ordering.removesuffix("_DESC").lower()
    descending = ordering.endswith("_DESC")
    present = [t for t in tasks if getattr(t, field) is not None]
    absent = [t for t in tasks if getattr(t, field) is None]
    present.sort(key=lambda t: (getattr(t, field), t.pk), reverse=descending)
    absent.sort(key=lambda t: t.pk, reverse=descending)
    return [str(t.pk) for t in present + absent]  # no due date: last in both directions


@pytest.mark.parametrize(
    "ordering", ["CREATED_AT", "CREATED_AT_DESC", "DUE_DATE", "DUE_DATE_DESC", "PRIORITY", "PRIORITY_DESC"]
)
@pytest.mark.parametrize("first", [2, 100])
def test_each_ordering_across_pages(
    client: Client, as_user: dict[str, str], ordered_tasks: list[Any], ordering: str, first: int
) -> None:
    pages = walk(client, as_user, PAGE, "tasks", ordering=ordering, first=first)

    assert [task_id for page in pages for task_id in page] == _expected(ordered_tasks, ordering)


def test_priority_ordering_is_high_medium_low(client: Client, as_user: dict[str, str], ordered_tasks: Any) -> None:
    query = "{ tasks(ordering: PRIORITY_DESC) { edges { node { priority } } } }"

    edges = data_of(gql(client, query, **as_user))["tasks"]["edges"]

    assert [edge["node"]["priority"] for edge in edges] == ["HIGH", "HIGH", "MEDIUM", "MEDIUM", "LOW", "LOW"]


def test_a_cursor_of_one_ordering_is_refused_by_another(
    client: Client, as_user: dict[str, str], ordered_tasks: Any
) -> None:
    cursor = data_of(gql(client, PAGE, {"ordering": "PRIORITY", "first": 1}, **as_user))["tasks"]["pageInfo"][
        "endCursor"
    ]

    error = only_error(gql(client, PAGE, {"ordering": "DUE_DATE", "after": cursor}, **as_user), "BAD_USER_INPUT")
    assert set(error["extensions"]["fields"]) == {"after"}


def test_the_cursor_of_a_rest_previous_link_is_refused_as_after(
    client: Client, as_user: dict[str, str], ordered_tasks: Any
) -> None:
    """`after` pages forward: a backward cursor listed the tasks before its position (the first page
    again, with hasNextPage true)."""
    first = client.get("/api/v1/tasks", {"limit": 2}, **as_user).json()
    second = client.get(first["next"], **as_user).json()
    previous = second["previous"].split("cursor=")[1].split("&")[0]

    error = only_error(gql(client, PAGE, {"first": 2, "after": previous}, **as_user), "BAD_USER_INPUT")
    assert error["extensions"]["fields"] == {
        "after": ["Must be the cursor of a next page: this list pages forward only."]
    }
    error = only_error(gql(client, SEARCH, {"query": "", "after": previous}, **as_user), "BAD_USER_INPUT")
    assert set(error["extensions"]["fields"]) == {"after"}


def test_a_bad_search_query_is_named_query(client: Client, as_user: dict[str, str]) -> None:
    """searchTasks has no `search` argument: its error names `query`, the one it has."""
    error = only_error(gql(client, SEARCH, {"query": "x" * 201}, **as_user), "BAD_USER_INPUT")
    assert set(error["extensions"]["fields"]) == {"query"}


# -- tasks: filters -------------------------------------------------------------------------------------------


@pytest.fixture
def filtered_tasks(user: Any, make_task: Any) -> dict[str, Any]:
    return {
        "milk": make_task(
            owner=user,
            title="Buy milk",
            description="at the shop",
            priority=Priority.LOW,
            status=Status.TODO,
            tags=["home"],
            due_date=datetime(2030, 1, 10, tzinfo=UTC),
        ),
        "report": make_task(
            owner=user,
            title="Write report",
            description="Quarterly MILK numbers",
            priority=Priority.HIGH,
            status=Status.IN_PROGRESS,
            tags=["work"],
            due_date=datetime(2030, 2, 10, tzinfo=UTC),
        ),
        "call": make_task(
            owner=user,
            title="Call mom",
            description="",
            priority=Priority.MEDIUM,
            status=Status.COMPLETED,
            completed=True,
            completed_at=timezone.now(),
            tags=["home", "work"],
        ),
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"milk", "report", "call"}),
        ({"status": "TODO"}, {"milk"}),
        ({"status": "IN_PROGRESS"}, {"report"}),
        ({"status": "COMPLETED"}, {"call"}),
        ({"priority": "HIGH"}, {"report"}),
        ({"priority": "LOW"}, {"milk"}),
        ({"completed": True}, {"call"}),
        ({"completed": False}, {"milk", "report"}),
        ({"tag": "home"}, {"milk", "call"}),
        ({"tag": " WORK "}, {"report", "call"}),
        ({"tag": "nothing"}, set()),
        ({"dueBefore": "2030-02-01T00:00:00+00:00"}, {"milk"}),
        ({"dueAfter": "2030-02-01T00:00:00+00:00"}, {"report"}),
        ({"dueAfter": "2030-01-01T00:00:00+00:00", "dueBefore": "2031-01-01T00:00:00+00:00"}, {"milk", "report"}),
        ({"search": "milk"}, {"milk", "report"}),
        ({"search": "MOM"}, {"call"}),
        ({"status": "TODO", "tag": "home"}, {"milk"}),
        ({"status": None, "tag": None}, {"milk", "report", "call"}),  # null means "no filter"
    ],
)
def test_filters(
    client: Client, as_user: dict[str, str], filtered_tasks: dict[str, Any], filters: dict, expected: set
) -> None:
    edges = data_of(gql(client, PAGE, {"filters": filters}, **as_user))["tasks"]["edges"]

    names = {name for name, task in filtered_tasks.items() if str(task.pk) in {e["node"]["id"] for e in edges}}
    assert names == expected
    assert len(edges) == len(expected)


def test_filters_on_me_tasks(client: Client, as_user: dict[str, str], filtered_tasks: dict[str, Any]) -> None:
    query = '{ me { tasks(filters: {tag: "work", completed: false}) { edges { node { id } } } } }'

    edges = data_of(gql(client, query, **as_user))["me"]["tasks"]["edges"]

    assert [edge["node"]["id"] for edge in edges] == [str(filtered_tasks["report"].pk)]


# -- searchTasks ----------------------------------------------------------------------------------------------


def test_search_tasks_matches_title_or_description_case_insensitively(
    client: Client, as_user: dict[str, str], filtered_tasks: dict[str, Any]
) -> None:
    edges = data_of(gql(client, SEARCH, {"query": "MiLk"}, **as_user))["searchTasks"]["edges"]

    assert {edge["node"]["id"] for edge in edges} == {str(filtered_tasks[n].pk) for n in ("milk", "report")}


def test_search_tasks_pages(client: Client, as_user: dict[str, str], user: Any, make_task: Any) -> None:
    matching = series(make_task, user, 5, description="needle inside")
    series(make_task, user, 3, description="hay")

    pages = walk(client, as_user, SEARCH, "searchTasks", query="NEEDLE", first=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [task_id for page in pages for task_id in page] == [str(t.pk) for t in reversed(matching)]


# -- me --------------------------------------------------------------------------------------------------------


def test_me(client: Client, as_user: dict[str, str], user: Any) -> None:
    me = data_of(gql(client, "{ me { id username roles isStaff } }", **as_user))["me"]

    assert me == {"id": user.pk, "username": user.username, "roles": ["editor"], "isStaff": False}


def test_me_of_a_manager(client: Client, manager: Any) -> None:
    me = data_of(gql(client, "{ me { username roles } }", **bearer(manager)))["me"]

    assert me == {"username": manager.username, "roles": ["manager"]}


def test_me_tasks_lists_own_tasks_and_pages(client: Client, as_user: dict[str, str], user: Any, make_task: Any) -> None:
    tasks = series(make_task, user, 5)
    query = """
    query($first: Int, $after: String) {
      me { tasks(first: $first, after: $after, ordering: CREATED_AT) {
        edges { node { id ownerId } } pageInfo { hasNextPage endCursor } } }
    }
    """
    ids: list[str] = []
    after = None
    while True:
        connection = data_of(gql(client, query, {"first": 2, "after": after}, **as_user))["me"]["tasks"]
        assert all(edge["node"]["ownerId"] == user.pk for edge in connection["edges"])
        ids += [edge["node"]["id"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert ids == [str(t.pk) for t in tasks]


# A lone surrogate ("\ud800", a legal JSON escape) is no character and cannot reach the database: of
# the three protocols only GraphQL's variables can carry one into a filter (REST's query string decodes
# invalid bytes as U+FFFD; gRPC's strings are UTF-8). It is refused as a NUL is.
@pytest.mark.parametrize(
    ("document", "variables", "field", "code_point"),
    [
        (PAGE, {"filters": {"search": "mi\ud800lk"}}, "search", "D800"),
        (PAGE, {"filters": {"tag": "\udfff"}}, "tag", "DFFF"),
        # searchTasks' text is its `query` argument, named as the client gave it.
        (SEARCH, {"query": "\ud83d"}, "query", "D83D"),
    ],
    ids=["search filter", "tag filter", "searchTasks"],
)
def test_a_lone_surrogate_in_a_filter_is_bad_user_input(
    client: Client,
    as_user: dict[str, str],
    filtered_tasks: dict[str, Any],
    document: str,
    variables: dict,
    field: str,
    code_point: str,
) -> None:
    error = only_error(gql(client, document, variables, **as_user), "BAD_USER_INPUT")

    assert error["extensions"]["fields"] == {field: [f"Surrogate characters are not allowed: U+{code_point}."]}
