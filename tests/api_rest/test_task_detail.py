"""GET / PATCH / PUT / DELETE /api/v1/tasks/{id}: ETag, If-None-Match, If-Match, replace, delete."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tasks.models import Priority, Status, Task
from tests.api_rest.helpers import TASK_KEYS, TASKS, assert_problem, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(make_task: Any, user: Any) -> Task:
    return make_task(owner=user, title="Original", description="desc", priority=Priority.HIGH, tags=["a", "b"])


# -- GET -----------------------------------------------------------------------------------------------


def test_get_returns_the_task_with_its_version_as_etag(api: APIClient, task: Task) -> None:
    response = api.get(task_url(task.pk))

    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    body = response.json()
    assert set(body) == TASK_KEYS
    assert body["id"] == str(task.pk)
    assert body["title"] == "Original"
    assert body["priority"] == "high"
    assert body["tags"] == ["a", "b"]


@pytest.mark.parametrize("header", ['"1"', 'W/"1"', '"7", "1"', 'W/"9", W/"1"', "*"])
def test_if_none_match_that_matches_is_304_without_body(api: APIClient, task: Task, header: str) -> None:
    response = api.get(task_url(task.pk), HTTP_IF_NONE_MATCH=header)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == '"1"'


@pytest.mark.parametrize("accept", ["text/html", "application/json", "*/*"])
def test_a_304_has_no_body_and_the_200_headers_whatever_the_representation(
    api: APIClient, task: Task, accept: str
) -> None:
    full = api.get(task_url(task.pk), HTTP_ACCEPT=accept)
    response = api.get(task_url(task.pk), HTTP_IF_NONE_MATCH='"1"', HTTP_ACCEPT=accept)

    assert response.status_code == 304
    assert response.content == b"" and response.get("Content-Length", "0") == "0"
    assert "Content-Type" not in response
    for header in ("ETag", "X-Frame-Options", "X-Content-Type-Options"):
        assert response[header] == full[header], header
    assert "Accept" in response["Vary"]  # (the page's 200 also varies on the Cookie its session read)
    assert response["X-Request-ID"]


@pytest.mark.parametrize("header", ['"2"', 'W/"2"', "1", '"1 "'])
def test_if_none_match_that_does_not_match_is_200(api: APIClient, task: Task, header: str) -> None:
    response = api.get(task_url(task.pk), HTTP_IF_NONE_MATCH=header)

    assert response.status_code == 200
    assert response.json()["id"] == str(task.pk)


def test_etag_of_an_old_version_no_longer_matches(api: APIClient, task: Task) -> None:
    old = api.get(task_url(task.pk))["ETag"]
    api.patch(task_url(task.pk), {"title": "Changed"}, format="json")

    response = api.get(task_url(task.pk), HTTP_IF_NONE_MATCH=old)

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    assert response.json()["title"] == "Changed"


def test_unknown_id_is_404(api: APIClient) -> None:
    assert_problem(api.get(task_url(uuid.uuid4())), 404, "not_found")


def test_a_format_no_renderer_has_is_400_not_the_tasks_absence(api: APIClient, task: Task) -> None:
    """404 says "no such task, or one you may not see": DRF's 404 for `?format=xml` on one's own task
    said it too."""
    assert_problem(api.get(f"{task_url(task.pk)}?format=xml"), 400, "invalid_input", fields={"format"})


def test_get_on_a_cache_hit_costs_no_query(api: APIClient, task: Task, django_assert_num_queries: Any) -> None:
    assert api.get(task_url(task.pk)).status_code == 200  # fills the cache

    with django_assert_num_queries(0):
        response = api.get(task_url(task.pk))
    assert response.status_code == 200
    assert response.json()["id"] == str(task.pk)


def test_not_modified_on_a_cache_hit_costs_no_query(api: APIClient, task: Task, django_assert_num_queries: Any) -> None:
    api.get(task_url(task.pk))

    with django_assert_num_queries(0):
        response = api.get(task_url(task.pk), HTTP_IF_NONE_MATCH='"1"')
    assert response.status_code == 304


# -- PATCH ---------------------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(api: APIClient, task: Task) -> None:
    response = api.patch(task_url(task.pk), {"title": "New"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == TASK_KEYS
    assert body["title"] == "New"
    assert body["description"] == "desc"
    assert body["priority"] == "high"
    assert body["tags"] == ["a", "b"]
    assert body["version"] == 2
    assert response["ETag"] == '"2"'


def test_patch_with_matching_if_match_applies(api: APIClient, task: Task) -> None:
    etag = api.get(task_url(task.pk))["ETag"]

    response = api.patch(task_url(task.pk), {"priority": "low"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    assert response.json()["priority"] == "low"
    assert api.get(task_url(task.pk)).json()["priority"] == "low"


def test_patch_with_if_match_star_applies_to_any_version(api: APIClient, task: Task) -> None:
    Task.objects.filter(pk=task.pk).update(version=5)

    response = api.patch(task_url(task.pk), {"title": "Any"}, format="json", HTTP_IF_MATCH="*")

    assert response.status_code == 200
    assert response["ETag"] == '"6"'


def test_patch_with_stale_if_match_is_412_with_current_version(api: APIClient, task: Task) -> None:
    api.patch(task_url(task.pk), {"title": "Someone else"}, format="json")  # now at version 2

    response = api.patch(task_url(task.pk), {"title": "Mine"}, format="json", HTTP_IF_MATCH='"1"')

    body = assert_problem(response, 412, "stale_version")
    assert body["current_version"] == 2
    assert Task.objects.get(pk=task.pk).title == "Someone else"


@pytest.mark.parametrize(
    "header",
    ["1", '"one"', '""', '"1', 'W/"1"', '"-1"', '"1" junk', '"²"', '"\u0661"'],
    ids=["unquoted", "word", "empty", "unclosed", "weak", "negative", "junk", "superscript-2", "arabic-indic-1"],
)
def test_patch_with_weak_or_malformed_if_match_is_412(api: APIClient, task: Task, header: str) -> None:
    response = api.patch(task_url(task.pk), {"title": "No"}, format="json", HTTP_IF_MATCH=header)

    body = assert_problem(response, 412, "stale_version")
    assert body["current_version"] == 1
    assert Task.objects.get(pk=task.pk).version == 1


# RFC 9110 §13.1.1: If-Match lists entity tags; the condition is true when any of them matches the
# current one by strong comparison (a weak tag never matches).
MATCHING_LISTS = ['"1", "99"', '"99", "1"', '"7","1" , "3"', 'W/"99", "1"']
MATCHING_LIST_IDS = ["first", "last", "middle-no-spaces", "after-a-weak-tag"]
NON_MATCHING_LISTS = ['"2", "99"', 'W/"1", "2"', 'W/"1", W/"2"']
NON_MATCHING_LIST_IDS = ["none", "only-weakly", "all-weak"]


@pytest.mark.parametrize("header", MATCHING_LISTS, ids=MATCHING_LIST_IDS)
def test_patch_with_an_if_match_list_applies_when_one_tag_matches(api: APIClient, task: Task, header: str) -> None:
    response = api.patch(task_url(task.pk), {"title": "Listed"}, format="json", HTTP_IF_MATCH=header)

    assert response.status_code == 200, response.content
    assert response["ETag"] == '"2"'
    assert Task.objects.get(pk=task.pk).title == "Listed"


@pytest.mark.parametrize("header", NON_MATCHING_LISTS, ids=NON_MATCHING_LIST_IDS)
def test_patch_with_an_if_match_list_that_does_not_match_is_412(api: APIClient, task: Task, header: str) -> None:
    response = api.patch(task_url(task.pk), {"title": "No"}, format="json", HTTP_IF_MATCH=header)

    assert assert_problem(response, 412, "stale_version")["current_version"] == 1
    assert Task.objects.get(pk=task.pk).version == 1


def test_patch_that_changes_nothing_keeps_the_version(api: APIClient, task: Task) -> None:
    response = api.patch(task_url(task.pk), {"title": "Original", "tags": ["A", "b"]}, format="json")

    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    assert Task.objects.get(pk=task.pk).version == 1


def test_patch_completed_keeps_status_and_completed_at_in_step(api: APIClient, task: Task) -> None:
    done = api.patch(task_url(task.pk), {"completed": True}, format="json").json()
    reopened = api.patch(task_url(task.pk), {"status": "in_progress"}, format="json").json()

    assert (done["status"], done["completed"]) == ("completed", True)
    assert done["completed_at"] is not None
    assert (reopened["status"], reopened["completed"], reopened["completed_at"]) == ("in_progress", False, None)


def test_patch_clears_nullable_and_list_fields(api: APIClient, make_task: Any, user: Any) -> None:
    task = make_task(owner=user, tags=["a"], due_date=timezone.now())

    body = api.patch(task_url(task.pk), {"due_date": None, "tags": [], "description": ""}, format="json").json()

    assert (body["due_date"], body["tags"], body["description"], body["version"]) == (None, [], "", 2)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": ""}, "title"),
        ({"priority": "urgent"}, "priority"),
        ({"due_date": "2030-01-01T00:00:00"}, "due_date"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"id": str(uuid.uuid4())}, "id"),
        ({"status": "completed", "completed": False}, "completed"),
    ],
)
def test_patch_with_invalid_input_is_400_and_changes_nothing(
    api: APIClient, task: Task, data: dict, field: str
) -> None:
    response = api.patch(task_url(task.pk), data, format="json")

    assert_problem(response, 400, "invalid_input", fields={field})
    assert Task.objects.get(pk=task.pk).version == 1


def test_get_after_patch_shows_the_new_version(api: APIClient, task: Task) -> None:
    api.get(task_url(task.pk))  # cached at version 1

    api.patch(task_url(task.pk), {"title": "Fresh"}, format="json")

    response = api.get(task_url(task.pk))
    assert response["ETag"] == '"2"'
    assert response.json()["title"] == "Fresh"


# -- PUT -----------------------------------------------------------------------------------------------


def test_put_replaces_every_field_and_resets_the_omitted_ones(api: APIClient, make_task: Any, user: Any) -> None:
    task = make_task(owner=user, priority=Priority.HIGH, status=Status.IN_PROGRESS, tags=["x"], description="old text")
    response = api.put(task_url(task.pk), {"title": "Replaced"}, format="json", HTTP_IF_MATCH='"1"')

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    body = response.json()
    assert body["title"] == "Replaced"
    assert body["description"] == ""
    assert body["priority"] == "medium"
    assert body["status"] == "todo"
    assert body["tags"] == []
    assert body["due_date"] is None


def test_put_with_stale_if_match_is_412(api: APIClient, task: Task) -> None:
    response = api.put(task_url(task.pk), {"title": "Replaced"}, format="json", HTTP_IF_MATCH='"3"')

    assert assert_problem(response, 412, "stale_version")["current_version"] == 1
    assert Task.objects.get(pk=task.pk).title == "Original"


def test_put_with_weak_if_match_is_412(api: APIClient, task: Task) -> None:
    response = api.put(task_url(task.pk), {"title": "Replaced"}, format="json", HTTP_IF_MATCH='W/"1"')

    assert_problem(response, 412, "stale_version")


@pytest.mark.parametrize("header", MATCHING_LISTS, ids=MATCHING_LIST_IDS)
def test_put_with_an_if_match_list_applies_when_one_tag_matches(api: APIClient, task: Task, header: str) -> None:
    response = api.put(task_url(task.pk), {"title": "Replaced"}, format="json", HTTP_IF_MATCH=header)

    assert response.status_code == 200, response.content
    assert response["ETag"] == '"2"'
    assert Task.objects.get(pk=task.pk).title == "Replaced"


@pytest.mark.parametrize("header", NON_MATCHING_LISTS, ids=NON_MATCHING_LIST_IDS)
def test_put_with_an_if_match_list_that_does_not_match_is_412(api: APIClient, task: Task, header: str) -> None:
    response = api.put(task_url(task.pk), {"title": "Replaced"}, format="json", HTTP_IF_MATCH=header)

    assert assert_problem(response, 412, "stale_version")["current_version"] == 1
    assert Task.objects.get(pk=task.pk).title == "Original"


def test_put_without_title_is_400(api: APIClient, task: Task) -> None:
    response = api.put(task_url(task.pk), {"description": "only"}, format="json")

    assert_problem(response, 400, "invalid_input", fields={"title"})


# -- DELETE --------------------------------------------------------------------------------------------


def test_delete_is_204_then_the_task_is_gone(api: APIClient, task: Task) -> None:
    assert api.get(task_url(task.pk)).status_code == 200  # cached before the delete

    response = api.delete(task_url(task.pk))

    assert response.status_code == 204
    assert response.content == b""
    assert not Task.objects.filter(pk=task.pk).exists()
    assert_problem(api.get(task_url(task.pk)), 404, "not_found")
    assert_problem(api.patch(task_url(task.pk), {"title": "x"}, format="json"), 404, "not_found")
    assert_problem(api.delete(task_url(task.pk)), 404, "not_found")
    assert api.get(TASKS).json()["results"] == []


def test_delete_with_matching_if_match_deletes(api: APIClient, task: Task) -> None:
    etag = api.get(task_url(task.pk))["ETag"]

    assert api.delete(task_url(task.pk), HTTP_IF_MATCH=etag).status_code == 204
    assert not Task.objects.filter(pk=task.pk).exists()


def test_delete_with_stale_if_match_is_412_with_current_version(api: APIClient, task: Task) -> None:
    """RFC 9110 §13.1.1: the precondition is evaluated before the method, so a stale tag deletes nothing."""
    api.patch(task_url(task.pk), {"title": "Someone else"}, format="json")  # now at version 2

    response = api.delete(task_url(task.pk), HTTP_IF_MATCH='"1"')

    body = assert_problem(response, 412, "stale_version")
    assert body["current_version"] == 2
    assert Task.objects.filter(pk=task.pk, version=2).exists()


@pytest.mark.parametrize("header", ["1", 'W/"1"', '"1" junk'], ids=["unquoted", "weak", "junk"])
def test_delete_with_weak_or_malformed_if_match_is_412(api: APIClient, task: Task, header: str) -> None:
    assert (
        assert_problem(api.delete(task_url(task.pk), HTTP_IF_MATCH=header), 412, "stale_version")["current_version"]
        == 1
    )
    assert Task.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize("header", MATCHING_LISTS, ids=MATCHING_LIST_IDS)
def test_delete_with_an_if_match_list_deletes_when_one_tag_matches(api: APIClient, task: Task, header: str) -> None:
    assert api.delete(task_url(task.pk), HTTP_IF_MATCH=header).status_code == 204
    assert not Task.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize("header", NON_MATCHING_LISTS, ids=NON_MATCHING_LIST_IDS)
def test_delete_with_an_if_match_list_that_does_not_match_is_412(api: APIClient, task: Task, header: str) -> None:
    response = api.delete(task_url(task.pk), HTTP_IF_MATCH=header)

    assert assert_problem(response, 412, "stale_version")["current_version"] == 1
    assert Task.objects.filter(pk=task.pk).exists()


def test_delete_with_if_match_star_deletes_any_version(api: APIClient, task: Task) -> None:
    Task.objects.filter(pk=task.pk).update(version=5)

    assert api.delete(task_url(task.pk), HTTP_IF_MATCH="*").status_code == 204
    assert not Task.objects.filter(pk=task.pk).exists()
    assert_problem(api.delete(task_url(task.pk), HTTP_IF_MATCH="*"), 404, "not_found")


# -- roles -----------------------------------------------------------------------------------------------


def test_viewer_reads_but_cannot_change_own_task(client_for: Any, viewer: Any, make_task: Any) -> None:
    task = make_task(owner=viewer, title="Mine")
    client = client_for(viewer)

    assert client.get(task_url(task.pk)).status_code == 200
    assert_problem(client.patch(task_url(task.pk), {"title": "x"}, format="json"), 403, "permission_denied")
    assert_problem(client.put(task_url(task.pk), {"title": "x"}, format="json"), 403, "permission_denied")
    assert_problem(client.delete(task_url(task.pk)), 403, "permission_denied")
    assert Task.objects.get(pk=task.pk).title == "Mine"
