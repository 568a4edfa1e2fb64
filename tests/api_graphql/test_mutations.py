"""Mutations: createTask (with idempotencyKey), updateTask and deleteTask (with expectedVersion)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from tasks.models import IdempotencyRecord, Priority, Status, Task
from tests.api_graphql.conftest import TASK_FIELDS, bearer, data_of, gql, only_error

pytestmark = pytest.mark.django_db

CREATE = (
    "mutation($input: TaskCreateInput!, $key: String) { createTask(input: $input, idempotencyKey: $key) {"
    + TASK_FIELDS
    + "} }"
)
UPDATE = (
    "mutation($id: ID!, $input: TaskPatchInput!, $expected: Int) {"
    " updateTask(id: $id, input: $input, expectedVersion: $expected) {" + TASK_FIELDS + "} }"
)
DELETE = "mutation($id: ID!) { deleteTask(id: $id) }"
DELETE_AT = "mutation($id: ID!, $expected: Int) { deleteTask(id: $id, expectedVersion: $expected) }"
TASK = "query($id: ID!) { task(id: $id) {" + TASK_FIELDS + "} }"
LIST = "{ tasks { edges { node { id title } } } }"


def create(client: Client, headers: dict[str, str], fields: dict[str, Any], key: str | None = None) -> Any:
    return gql(client, CREATE, {"input": fields, "key": key}, **headers)


# -- createTask ---------------------------------------------------------------------------------------------


def test_create_with_defaults(client: Client, as_user: dict[str, str], user: Any) -> None:
    node = data_of(create(client, as_user, {"title": "  Plan the week  "}))["createTask"]

    stored = Task.objects.get()
    assert node["id"] == str(stored.pk)
    assert {k: node[k] for k in node if k not in {"id", "createdAt", "updatedAt"}} == {
        "ownerId": user.pk,
        "title": "Plan the week",
        "description": "",
        "priority": "MEDIUM",
        "status": "TODO",
        "completed": False,
        "dueDate": None,
        "tags": [],
        "completedAt": None,
        "version": 1,
    }
    assert (stored.owner_id, stored.title, stored.version) == (user.pk, "Plan the week", 1)


def test_create_with_every_field(client: Client, as_user: dict[str, str]) -> None:
    fields = {
        "title": "Ship it",
        "description": "Before Friday",
        "priority": "HIGH",
        "status": "IN_PROGRESS",
        "dueDate": "2030-06-01T09:30:00+00:00",
        "tags": [" Work ", "work", "URGENT"],
    }

    node = data_of(create(client, as_user, fields))["createTask"]

    assert (node["priority"], node["status"], node["completed"]) == ("HIGH", "IN_PROGRESS", False)
    assert node["tags"] == ["work", "urgent"]
    stored = Task.objects.get()
    assert (stored.priority, stored.status, stored.tags) == (Priority.HIGH, Status.IN_PROGRESS, ["work", "urgent"])
    assert stored.due_date == datetime(2030, 6, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("fields", [{"status": "COMPLETED"}, {"completed": True}])
def test_create_completed_sets_both_and_completed_at(client: Client, as_user: dict[str, str], fields: dict) -> None:
    node = data_of(create(client, as_user, {"title": "Done already", **fields}))["createTask"]

    assert (node["status"], node["completed"]) == ("COMPLETED", True)
    assert node["completedAt"] is not None
    assert datetime.fromisoformat(node["completedAt"]).utcoffset() is not None


def test_due_date_round_trip_keeps_the_instant(client: Client, as_user: dict[str, str]) -> None:
    sent = "2030-05-01T12:30:15.250000+02:00"

    created = data_of(create(client, as_user, {"title": "Round trip", "dueDate": sent}))["createTask"]
    read = data_of(gql(client, TASK, {"id": created["id"]}, **as_user))["task"]

    instant = datetime(2030, 5, 1, 10, 30, 15, 250000, tzinfo=UTC)
    assert datetime.fromisoformat(created["dueDate"]) == instant
    assert datetime.fromisoformat(read["dueDate"]) == instant
    assert datetime.fromisoformat(read["dueDate"]).utcoffset() is not None
    assert Task.objects.get().due_date == instant


def test_a_created_task_is_readable_and_listed_at_once(client: Client, as_user: dict[str, str]) -> None:
    # Warm the cached (empty) list pages that the create must orphan.
    assert data_of(gql(client, LIST, **as_user))["tasks"]["edges"] == []
    assert data_of(gql(client, "{ me { tasks { edges { node { id } } } } }", **as_user))["me"]["tasks"]["edges"] == []

    node = data_of(create(client, as_user, {"title": "Fresh"}))["createTask"]

    assert data_of(gql(client, TASK, {"id": node["id"]}, **as_user))["task"]["title"] == "Fresh"
    assert data_of(gql(client, LIST, **as_user))["tasks"]["edges"] == [{"node": {"id": node["id"], "title": "Fresh"}}]
    mine = data_of(gql(client, "{ me { tasks { edges { node { id } } } } }", **as_user))["me"]["tasks"]["edges"]
    assert mine == [{"node": {"id": node["id"]}}]


# -- createTask: idempotencyKey --------------------------------------------------------------------------------


def test_replay_with_the_same_key_returns_the_first_result_and_creates_nothing(
    client: Client, as_user: dict[str, str]
) -> None:
    fields = {"title": "Once", "dueDate": "2030-01-02T03:04:05.678901+05:30", "tags": ["A", "b"]}

    first = data_of(create(client, as_user, fields, key="key-1"))["createTask"]
    replay = data_of(create(client, as_user, fields, key="key-1"))["createTask"]

    assert replay == first
    assert Task.objects.count() == 1


def test_same_key_with_other_input_is_a_conflict(client: Client, as_user: dict[str, str]) -> None:
    data_of(create(client, as_user, {"title": "First"}, key="key-1"))

    response = create(client, as_user, {"title": "Second"}, key="key-1")

    only_error(response, "CONFLICT")
    assert response.json()["data"] is None
    assert list(Task.objects.values_list("title", flat=True)) == ["First"]


def test_same_key_while_the_first_is_in_flight_is_a_conflict(
    client: Client, as_user: dict[str, str], user: Any
) -> None:
    data_of(create(client, as_user, {"title": "First"}, key="key-1"))
    # What a first request still running looks like: its record has no response yet.
    IdempotencyRecord.objects.filter(user=user, key="key-1").update(response=None)

    only_error(create(client, as_user, {"title": "First"}, key="key-1"), "CONFLICT")
    assert Task.objects.count() == 1


def test_keys_belong_to_their_user(client: Client, as_user: dict[str, str], other_user: Any) -> None:
    mine = data_of(create(client, as_user, {"title": "Same"}, key="shared"))["createTask"]
    theirs = data_of(create(client, bearer(other_user), {"title": "Same"}, key="shared"))["createTask"]

    assert mine["id"] != theirs["id"]
    assert theirs["ownerId"] == other_user.pk
    assert Task.objects.count() == 2


def test_a_refused_create_does_not_use_up_its_key(client: Client, as_user: dict[str, str]) -> None:
    error = only_error(create(client, as_user, {"title": ""}, key="retry-me"), "BAD_USER_INPUT")
    assert set(error["extensions"]["fields"]) == {"title"}

    node = data_of(create(client, as_user, {"title": "Fixed"}, key="retry-me"))["createTask"]

    assert node["title"] == "Fixed"
    assert Task.objects.count() == 1


# -- updateTask -------------------------------------------------------------------------------------------------


def test_update_changes_only_the_fields_sent(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Old", description="Keep me", priority=Priority.LOW, tags=["x"])

    node = data_of(gql(client, UPDATE, {"id": str(task.pk), "input": {"title": "New"}}, **as_user))["updateTask"]

    assert (node["title"], node["description"], node["priority"], node["tags"]) == ("New", "Keep me", "LOW", ["x"])
    assert node["version"] == 2
    task.refresh_from_db()
    assert (task.title, task.description, task.version) == ("New", "Keep me", 2)


def test_update_with_the_current_version_applies(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Old")

    node = data_of(gql(client, UPDATE, {"id": str(task.pk), "input": {"priority": "HIGH"}, "expected": 1}, **as_user))[
        "updateTask"
    ]

    assert (node["priority"], node["version"]) == ("HIGH", 2)


def test_update_with_a_stale_version_is_precondition_failed(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Old")
    data_of(gql(client, UPDATE, {"id": str(task.pk), "input": {"title": "Second"}}, **as_user))

    response = gql(client, UPDATE, {"id": str(task.pk), "input": {"title": "Lost"}, "expected": 1}, **as_user)

    error = only_error(response, "PRECONDITION_FAILED")
    assert error["extensions"]["currentVersion"] == 2
    assert error["path"] == ["updateTask"]
    assert response.json()["data"] is None
    task.refresh_from_db()
    assert (task.title, task.version) == ("Second", 2)


def test_due_date_null_clears_it(client: Client, as_user: dict[str, str], user: Any, make_task: Any) -> None:
    task = make_task(owner=user, due_date=datetime(2030, 1, 1, tzinfo=UTC))

    node = data_of(gql(client, UPDATE, {"id": str(task.pk), "input": {"dueDate": None}}, **as_user))["updateTask"]

    assert node["dueDate"] is None
    task.refresh_from_db()
    assert task.due_date is None


def test_an_update_that_changes_nothing_keeps_the_version(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Same")

    node = data_of(gql(client, UPDATE, {"id": str(task.pk), "input": {"title": "Same"}}, **as_user))["updateTask"]

    assert node["version"] == 1


@pytest.mark.parametrize(
    ("change", "status", "completed"),
    [
        ({"completed": True}, "COMPLETED", True),
        ({"status": "COMPLETED"}, "COMPLETED", True),
        ({"status": "IN_PROGRESS"}, "IN_PROGRESS", False),
    ],
)
def test_status_and_completed_follow_each_other(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, change: dict, status: str, completed: bool
) -> None:
    task = make_task(owner=user)

    node = data_of(gql(client, UPDATE, {"id": str(task.pk), "input": change}, **as_user))["updateTask"]

    assert (node["status"], node["completed"]) == (status, completed)
    assert (node["completedAt"] is not None) is completed


def test_an_update_is_visible_to_the_next_read(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Before")
    assert data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))["task"]["title"] == "Before"  # now cached
    assert data_of(gql(client, LIST, **as_user))["tasks"]["edges"][0]["node"]["title"] == "Before"

    data_of(gql(client, UPDATE, {"id": str(task.pk), "input": {"title": "After"}}, **as_user))

    assert data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))["task"]["title"] == "After"
    assert data_of(gql(client, LIST, **as_user))["tasks"]["edges"][0]["node"]["title"] == "After"


def test_a_manager_updates_another_users_task(client: Client, manager: Any, user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title="Theirs")

    node = data_of(gql(client, UPDATE, {"id": str(task.pk), "input": {"title": "Managed"}}, **bearer(manager)))[
        "updateTask"
    ]

    assert (node["title"], node["ownerId"]) == ("Managed", user.pk)


# -- deleteTask -------------------------------------------------------------------------------------------------


def test_delete_returns_true_and_the_task_is_gone(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user)
    assert data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))["task"]["id"] == str(task.pk)  # cached

    assert data_of(gql(client, DELETE, {"id": str(task.pk)}, **as_user)) == {"deleteTask": True}

    response = gql(client, TASK, {"id": str(task.pk)}, **as_user)
    only_error(response, "NOT_FOUND")
    assert response.json()["data"] == {"task": None}
    assert data_of(gql(client, LIST, **as_user))["tasks"]["edges"] == []
    assert not Task.objects.exists()


def test_delete_with_a_stale_version_is_precondition_failed(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Old")
    data_of(gql(client, UPDATE, {"id": str(task.pk), "input": {"title": "Second"}}, **as_user))

    response = gql(client, DELETE_AT, {"id": str(task.pk), "expected": 1}, **as_user)

    error = only_error(response, "PRECONDITION_FAILED")
    assert error["extensions"]["currentVersion"] == 2
    assert error["path"] == ["deleteTask"]
    assert response.json()["data"] is None
    assert Task.objects.filter(pk=task.pk, version=2).exists()
    assert data_of(gql(client, DELETE_AT, {"id": str(task.pk), "expected": 2}, **as_user)) == {"deleteTask": True}
    assert not Task.objects.exists()


def test_deleting_twice_is_not_found(client: Client, as_user: dict[str, str], user: Any, make_task: Any) -> None:
    task = make_task(owner=user)
    data_of(gql(client, DELETE, {"id": str(task.pk)}, **as_user))

    response = gql(client, DELETE, {"id": str(task.pk)}, **as_user)

    only_error(response, "NOT_FOUND")
    assert response.json()["data"] is None


def test_created_at_is_set_by_the_server(client: Client, as_user: dict[str, str]) -> None:
    before = datetime.now(UTC)

    node = data_of(create(client, as_user, {"title": "When"}))["createTask"]

    created = datetime.fromisoformat(node["createdAt"])
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC) + timedelta(seconds=1)
    assert datetime.fromisoformat(node["updatedAt"]) >= created
