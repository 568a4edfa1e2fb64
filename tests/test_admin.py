"""The admin: tasks (filters, search, bulk complete through the service), API keys, users and roles."""

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from core.auth import authenticate_api_key
from core.models import ApiKey
from tasks.models import Status, Task
from tasks.selectors import TaskNotFound, task_get
from tests.factories import TaskFactory, UserFactory, actor_of


@pytest.fixture
def staff_client(db) -> Client:
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


def test_task_changelist_filters_and_search(staff_client: Client) -> None:
    TaskFactory(title="Water the plants", status=Status.TODO)
    TaskFactory(title="Pay the rent", status=Status.IN_PROGRESS)
    page = staff_client.get("/admin/tasks/task/", {"q": "plants"})
    assert page.status_code == 200
    assert b"Water the plants" in page.content and b"Pay the rent" not in page.content
    page = staff_client.get("/admin/tasks/task/", {"status__exact": "in_progress"})
    assert b"Pay the rent" in page.content and b"Water the plants" not in page.content


def test_bulk_complete_goes_through_the_service(staff_client: Client, django_capture_on_commit_callbacks) -> None:
    owner = UserFactory()
    tasks = [TaskFactory(owner=owner), TaskFactory(owner=owner)]
    task_get(actor=actor_of(owner), task_id=tasks[0].pk)  # cached before the change
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/tasks/task/",
            {"action": "mark_completed", "_selected_action": [str(t.pk) for t in tasks]},
        )
    assert response.status_code == 302
    for task in Task.objects.filter(pk__in=[t.pk for t in tasks]):
        assert (task.status, task.completed, task.version) == (Status.COMPLETED, True, 2)
        assert task.completed_at is not None
    # the service refreshed the cache on commit: the owner reads the new state
    assert task_get(actor=actor_of(owner), task_id=tasks[0].pk).completed is True


def test_bulk_delete_goes_through_the_service(staff_client: Client, django_capture_on_commit_callbacks) -> None:
    owner = UserFactory()
    tasks = [TaskFactory(owner=owner), TaskFactory(owner=owner)]
    kept = TaskFactory(owner=owner)
    task_get(actor=actor_of(owner), task_id=tasks[0].pk)  # cached before the delete
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/tasks/task/",
            {"action": "delete_selected", "post": "yes", "_selected_action": [str(t.pk) for t in tasks]},
        )
    assert response.status_code == 302
    assert list(Task.objects.filter(owner=owner)) == [kept]
    # the service answered "not found" in the cache on commit: the owner no longer reads it
    with pytest.raises(TaskNotFound):
        task_get(actor=actor_of(owner), task_id=tasks[0].pk)


def test_adding_a_task_in_the_admin_uses_the_service(staff_client: Client) -> None:
    owner = UserFactory()
    response = staff_client.post(
        "/admin/tasks/task/add/",
        {
            "owner": owner.pk,
            "title": "  From the admin  ",
            "description": "",
            "priority": 3,
            "status": "todo",
            "tags": '["Ops", "ops"]',
        },
    )
    assert response.status_code == 302, response.content
    task = Task.objects.get(owner=owner)
    assert (task.title, task.tags, task.priority, task.version) == ("From the admin", ["ops"], 3, 1)


def test_api_key_created_in_the_admin_is_shown_once(staff_client: Client) -> None:
    owner = UserFactory()
    response = staff_client.post(
        "/admin/core/apikey/add/", {"user": owner.pk, "name": "ci", "read_only": "on"}, follow=True
    )
    assert response.status_code == 200
    raw = re.search(rb"th_[0-9a-f]{12}_[A-Za-z0-9_-]+", response.content).group().decode()
    assert authenticate_api_key(raw).read_only
    key = ApiKey.objects.get(user=owner)
    assert raw.split("_", 2)[2] not in key.secret_hash
    assert raw.encode() not in staff_client.get(f"/admin/core/apikey/{key.pk}/change/").content


def test_users_and_roles_are_managed_in_the_admin(staff_client: Client) -> None:
    assert staff_client.get("/admin/auth/user/").status_code == 200
    page = staff_client.get("/admin/auth/group/")
    for role in ("viewer", "editor", "manager"):
        assert role.encode() in page.content
    assert Group.objects.filter(name__in=["viewer", "editor", "manager"]).count() == 3
