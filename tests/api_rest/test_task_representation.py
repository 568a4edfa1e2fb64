"""The stored JSON of a task (api_rest.apis `_task_json`, core.memo): byte for byte what DRF's
JSONRenderer renders, never served once the task changed, and DRF's own rendering for the browsable
API and for `indent=`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from api_rest.serializers import task_to_json
from tasks.models import Task
from tests.api_rest.helpers import TASKS, task_url

pytestmark = pytest.mark.django_db


def _drf(data: Any) -> bytes:
    return JSONRenderer().render(data)


@pytest.fixture
def task(make_task: Any, user: Any) -> Task:
    # Text that DRF escapes (U+2028) or keeps as is (non-ASCII), so the stored bytes must match it exactly.
    return make_task(owner=user, title="Zoë \u2028 line", description='quote " and \\', tags=["a", "ü"])


def test_the_detail_is_what_drf_renders(api: APIClient, task: Task) -> None:
    first = api.get(task_url(task.pk))
    second = api.get(task_url(task.pk))  # served from the memo

    task.refresh_from_db()
    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == second["Content-Type"] == "application/json"
    assert first.content == second.content == _drf(task_to_json(task))
    assert b"\\u2028" in first.content
    assert second["ETag"] == '"1"'
    assert "Accept" in second["Vary"]
    assert "GET" in second["Allow"]


def test_the_list_is_what_drf_renders(api: APIClient, make_task: Any, user: Any) -> None:
    for n in range(3):
        make_task(owner=user, title=f"T{n} \u2029")
    api.get(f"{TASKS}?limit=2")

    response = api.get(f"{TASKS}?limit=2")

    body = response.json()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == _drf(body)
    assert body["next"] is not None and body["previous"] is None
    tasks = {str(t.pk): t for t in Task.objects.all()}
    assert [item for item in body["results"]] == [task_to_json(tasks[item["id"]]) for item in body["results"]]
    assert response.content.count(b"\\u2029") == 2

    following = api.get(body["next"])
    assert following.json()["previous"] is not None
    assert following.content == _drf(following.json())


def test_an_update_is_served_at_once(api: APIClient, task: Task) -> None:
    api.get(task_url(task.pk))
    api.get(f"{TASKS}?limit=5")

    api.patch(task_url(task.pk), {"title": "Changed"}, format="json")
    detail = api.get(task_url(task.pk))
    listed = api.get(f"{TASKS}?limit=5")

    assert detail.json()["title"] == "Changed"
    assert detail["ETag"] == '"2"'
    assert listed.json()["results"][0]["title"] == "Changed"


def test_a_completed_and_a_deleted_task_are_served_at_once(api: APIClient, task: Task) -> None:
    api.get(task_url(task.pk))

    api.patch(task_url(task.pk), {"status": "completed"}, format="json")
    completed = api.get(task_url(task.pk)).json()
    api.delete(task_url(task.pk))

    assert completed["completed"] is True and completed["status"] == "completed"
    assert api.get(task_url(task.pk)).status_code == 404
    assert api.get(f"{TASKS}?limit=5").json()["results"] == []


def test_a_change_of_owner_or_visibility_is_served_at_once(
    client_for: Any, api: APIClient, task: Task, user: Any, other_user: Any, manager: Any
) -> None:
    other = client_for(other_user)
    boss = client_for(manager)
    assert api.get(task_url(task.pk)).status_code == 200
    assert boss.get(task_url(task.pk)).json()["owner"] == user.pk
    assert other.get(task_url(task.pk)).status_code == 404

    # The owner changes without a new version (as a raw write would): the memo must not care.
    from tasks.cache import task_written

    Task.objects.filter(pk=task.pk).update(owner=other_user)
    task.refresh_from_db()
    task_written(task)

    assert api.get(task_url(task.pk)).status_code == 404
    assert other.get(task_url(task.pk)).json()["owner"] == other_user.pk
    assert boss.get(task_url(task.pk)).json()["owner"] == other_user.pk


def test_the_browsable_api_and_indent_are_rendered_by_drf(client_for: Any, api: APIClient, task: Task) -> None:
    api.get(task_url(task.pk))

    html = api.get(task_url(task.pk), HTTP_ACCEPT="text/html")
    indented = api.get(task_url(task.pk), HTTP_ACCEPT="application/json; indent=4")
    listed = api.get(f"{TASKS}?limit=5", HTTP_ACCEPT="application/json; indent=2")

    assert html.status_code == 200
    assert html["Content-Type"].startswith("text/html")
    assert b"Zo\xc3\xab" in html.content
    assert indented.content.startswith(b'{\n    "id"')
    assert json.loads(indented.content) == json.loads(api.get(task_url(task.pk)).content)
    assert listed.content.startswith(b'{\n  "results"')
