"""Another user's task is "not found" (never "forbidden") on every endpoint; managers see and edit all."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tasks.models import Priority, Task
from tests.api_rest.helpers import TASKS, assert_problem, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def a_task(make_task: Any, user: Any) -> Task:
    """User A's task, with a searchable word and a tag."""
    return make_task(owner=user, title="Secret zebra plan", description="", priority=Priority.HIGH, tags=["shared"])


@pytest.fixture
def b_client(client_for: Any, other_user: Any) -> APIClient:
    return client_for(other_user)


@pytest.mark.parametrize(
    ("method", "data", "headers"),
    [
        ("get", None, {}),
        ("get", None, {"HTTP_IF_NONE_MATCH": '"1"'}),
        ("patch", {"title": "Hijacked"}, {}),
        ("patch", {"title": "Hijacked"}, {"HTTP_IF_MATCH": '"1"'}),
        ("patch", {"title": "Hijacked"}, {"HTTP_IF_MATCH": '"9"'}),
        ("put", {"title": "Hijacked"}, {}),
        ("put", {"title": "Hijacked"}, {"HTTP_IF_MATCH": '"9"'}),
        ("delete", None, {}),
    ],
)
def test_other_users_task_is_404_for_every_method(
    b_client: APIClient, a_task: Task, method: str, data: dict | None, headers: dict
) -> None:
    response = getattr(b_client, method)(task_url(a_task.pk), data, format="json", **headers)

    assert_problem(response, 404, "not_found")
    task = Task.objects.get(pk=a_task.pk)
    assert (task.title, task.version) == ("Secret zebra plan", 1)


def test_404_for_another_users_task_equals_404_for_no_task(b_client: APIClient, a_task: Task) -> None:
    hidden = b_client.get(task_url(a_task.pk)).json()
    missing = b_client.get(task_url("00000000-0000-4000-8000-000000000000")).json()

    assert {k: v for k, v in hidden.items() if k != "request_id"} == {
        k: v for k, v in missing.items() if k != "request_id"
    }


def test_a_cached_task_is_not_served_to_another_user(api: APIClient, b_client: APIClient, a_task: Task) -> None:
    assert api.get(task_url(a_task.pk)).status_code == 200  # now in the cache

    assert_problem(b_client.get(task_url(a_task.pk)), 404, "not_found")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (TASKS, {}),
        (TASKS, {"search": "zebra"}),
        (TASKS, {"tag": "shared"}),
        (TASKS, {"priority": "high", "ordering": "-priority"}),
        (f"{TASKS}/me", {}),
        (f"{TASKS}/me", {"search": "zebra"}),
    ],
)
def test_other_users_task_never_appears_in_lists(
    api: APIClient, b_client: APIClient, make_task: Any, other_user: Any, a_task: Task, path: str, params: dict
) -> None:
    own = make_task(owner=other_user, title="B's zebra", priority=Priority.HIGH, tags=["shared"])
    assert str(a_task.pk) in [item["id"] for item in api.get(path, params).json()["results"]]  # A's page cached

    response = b_client.get(path, params)

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == [str(own.pk)]


def test_manager_sees_and_edits_other_users_tasks(client_for: Any, manager: Any, a_task: Task, user: Any) -> None:
    client = client_for(manager)

    assert client.get(task_url(a_task.pk)).status_code == 200
    assert [item["id"] for item in client.get(TASKS, {"search": "zebra"}).json()["results"]] == [str(a_task.pk)]
    patched = client.patch(task_url(a_task.pk), {"title": "Reviewed"}, format="json", HTTP_IF_MATCH='"1"')
    assert patched.status_code == 200
    assert patched.json()["owner"] == user.pk  # the owner stays
    replaced = client.put(task_url(a_task.pk), {"title": "Replaced"}, format="json")
    assert replaced.status_code == 200
    assert replaced["ETag"] == '"3"'
    assert client.delete(task_url(a_task.pk)).status_code == 204
    assert not Task.objects.filter(pk=a_task.pk).exists()


def test_managers_change_is_seen_by_the_owner(api: APIClient, client_for: Any, manager: Any, a_task: Task) -> None:
    assert api.get(task_url(a_task.pk))["ETag"] == '"1"'

    client_for(manager).patch(task_url(a_task.pk), {"priority": "low"}, format="json")

    response = api.get(task_url(a_task.pk))
    assert response["ETag"] == '"2"'
    assert response.json()["priority"] == "low"
    assert [item["priority"] for item in api.get(TASKS).json()["results"]] == ["low"]


def test_viewer_gets_403_for_writes_whatever_the_id(client_for: Any, viewer: Any, a_task: Task) -> None:
    # A viewer may write nothing, so 403 says nothing about whether the id exists.
    client = client_for(viewer)

    assert_problem(client.get(task_url(a_task.pk)), 404, "not_found")
    assert_problem(client.patch(task_url(a_task.pk), {"title": "x"}, format="json"), 403, "permission_denied")
    assert_problem(
        client.patch(task_url("00000000-0000-4000-8000-000000000000"), {"title": "x"}, format="json"),
        403,
        "permission_denied",
    )
