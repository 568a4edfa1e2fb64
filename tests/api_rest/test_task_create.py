"""POST /api/v1/tasks: 201 + Location + ETag, the task shape, validation, roles, idempotency, query count."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tasks.models import IdempotencyRecord, Task
from tests.api_rest.helpers import TASK_KEYS, TASKS, assert_problem, task_url

pytestmark = pytest.mark.django_db


def test_create_answers_201_with_location_etag_and_the_task(api: APIClient, user: Any) -> None:
    response = api.post(
        TASKS,
        {"title": "Write tests", "priority": "high", "tags": ["Work"], "due_date": "2030-01-31T17:00:00Z"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == TASK_KEYS
    assert response["ETag"] == '"1"'
    assert response["Location"] == f"http://testserver{task_url(body['id'])}"
    assert body["owner"] == user.pk
    assert body["title"] == "Write tests"
    assert body["priority"] == "high"
    assert body["tags"] == ["work"]
    assert body["due_date"] == "2030-01-31T17:00:00Z"
    assert body["version"] == 1
    assert Task.objects.filter(pk=body["id"], owner=user).exists()


def test_create_fills_defaults(api: APIClient) -> None:
    body = api.post(TASKS, {"title": "t"}, format="json").json()

    assert body["description"] == ""
    assert body["priority"] == "medium"
    assert body["status"] == "todo"
    assert body["completed"] is False
    assert body["due_date"] is None
    assert body["tags"] == []
    assert body["completed_at"] is None
    assert body["created_at"].endswith("Z")


def test_create_normalises_title_and_tags(api: APIClient) -> None:
    body = api.post(TASKS, {"title": "  padded  ", "tags": [" Home ", "HOME", "x"]}, format="json").json()

    assert body["title"] == "padded"
    assert body["tags"] == ["home", "x"]


@pytest.mark.parametrize("data", [{"completed": True}, {"status": "completed"}])
def test_create_completed_sets_status_completed_and_completed_at(api: APIClient, data: dict) -> None:
    body = api.post(TASKS, {"title": "done", **data}, format="json").json()

    assert body["status"] == "completed"
    assert body["completed"] is True
    assert body["completed_at"] is not None


def test_location_serves_the_created_task(api: APIClient) -> None:
    created = api.post(TASKS, {"title": "here"}, format="json")

    fetched = api.get(created["Location"])

    assert fetched.status_code == 200
    assert fetched.json() == created.json()
    assert fetched["ETag"] == created["ETag"]


def test_created_task_appears_in_the_list_at_once(api: APIClient) -> None:
    assert api.get(TASKS).json()["results"] == []  # caches the empty page

    created = api.post(TASKS, {"title": "new"}, format="json").json()

    assert [task["id"] for task in api.get(TASKS).json()["results"]] == [created["id"]]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": None}, "title"),
        ({"title": "t", "description": "d" * 10_001}, "description"),
        ({"title": "t", "priority": "urgent"}, "priority"),
        ({"title": "t", "priority": 3}, "priority"),
        ({"title": "t", "status": "done"}, "status"),
        ({"title": "t", "completed": "maybe"}, "completed"),
        ({"title": "t", "completed": True, "status": "todo"}, "completed"),
        ({"title": "t", "due_date": "tomorrow"}, "due_date"),
        ({"title": "t", "due_date": "2030-01-31T17:00:00"}, "due_date"),
        ({"title": "t", "tags": "home"}, "tags"),
        ({"title": "t", "tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"title": "t", "tags": ["x" * 51]}, "tags"),
        ({"title": "t", "tags": [" "]}, "tags"),
        ({"title": "t", "version": 7}, "version"),
        ({"title": "t", "owner": 1}, "owner"),
        ({"title": "t", "colour": "red"}, "colour"),
    ],
)
def test_invalid_input_is_400_naming_the_field(api: APIClient, data: dict, field: str) -> None:
    response = api.post(TASKS, data, format="json")

    assert_problem(response, 400, "invalid_input", fields={field})
    assert not Task.objects.exists()


def test_a_body_that_is_not_an_object_is_400(api: APIClient) -> None:
    response = api.post(TASKS, ["title"], format="json")

    body = assert_problem(response, 400, "invalid_input")
    assert body["errors"]


def test_viewer_cannot_create(client_for: Any, viewer: Any) -> None:
    response = client_for(viewer).post(TASKS, {"title": "nope"}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert not Task.objects.exists()


def test_anonymous_cannot_create(anon: APIClient) -> None:
    response = anon.post(TASKS, {"title": "nope"}, format="json")

    assert_problem(response, 401, "not_authenticated")
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "data",
    [{"title": "t"}, {"title": "t" * 200, "description": "d" * 5000, "tags": [f"tag{i}" for i in range(20)]}],
    ids=["small", "large"],
)
def test_create_costs_a_fixed_number_of_queries(api: APIClient, django_assert_num_queries: Any, data: dict) -> None:
    # owner check of full_clean, savepoint, INSERT, release: whatever the payload.
    with django_assert_num_queries(4):
        response = api.post(TASKS, data, format="json")
    assert response.status_code == 201


# -- Idempotency-Key ----------------------------------------------------------------------------------


def test_idempotent_replay_returns_the_first_result_and_creates_nothing(api: APIClient) -> None:
    first = api.post(TASKS, {"title": "once", "tags": ["a"]}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    replay = api.post(TASKS, {"title": "once", "tags": ["a"]}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Location"] == first["Location"]
    assert replay["ETag"] == first["ETag"]
    assert replay.json()["id"] == first.json()["id"]
    assert Task.objects.count() == 1


def test_idempotent_replay_body_equals_the_first_body(api: APIClient) -> None:
    first = api.post(TASKS, {"title": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    replay = api.post(TASKS, {"title": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert replay.json() == first.json()


def test_idempotency_key_reused_with_another_body_is_422(api: APIClient) -> None:
    api.post(TASKS, {"title": "first"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    response = api.post(TASKS, {"title": "second"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert_problem(response, 422, "idempotency_key_reused")
    assert list(Task.objects.values_list("title", flat=True)) == ["first"]


def test_idempotency_key_in_flight_is_409(api: APIClient, user: Any) -> None:
    api.post(TASKS, {"title": "slow"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    # The same request, but its first attempt has not finished: the record holds no response yet.
    IdempotencyRecord.objects.filter(user=user, key="key-1").update(response=None)

    response = api.post(TASKS, {"title": "slow"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert_problem(response, 409, "idempotency_key_in_flight")
    assert Task.objects.count() == 1


def test_idempotency_keys_belong_to_their_user(api: APIClient, client_for: Any, other_user: Any) -> None:
    mine = api.post(TASKS, {"title": "same"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    theirs = client_for(other_user).post(TASKS, {"title": "same"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["owner"] == other_user.pk


def test_failed_create_does_not_use_up_the_key(api: APIClient) -> None:
    bad = api.post(TASKS, {"title": "t", "tags": ["x" * 51]}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    good = api.post(TASKS, {"title": "t", "tags": ["x"]}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert_problem(bad, 400, "invalid_input", fields={"tags"})
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good


def test_overlong_idempotency_key_is_400(api: APIClient) -> None:
    response = api.post(TASKS, {"title": "t"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert_problem(response, 400, "invalid_input", fields={"idempotency_key"})
    assert not Task.objects.exists()
