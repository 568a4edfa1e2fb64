"""task_delete: visibility, roles, and what the cache and the lists say afterwards."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.errors import PermissionDenied, StaleVersion
from core.types import Actor
from tasks.models import Task
from tasks.selectors import TaskNotFound, task_get, task_list
from tasks.services import task_create, task_delete, task_update
from tests.tasks.helpers import run_concurrently

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(actor: Actor) -> Task:
    return task_create(actor=actor, data={"title": "Delete me"})


def test_owner_deletes(actor: Actor, task: Task, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert task_delete(actor=actor, task_id=task.pk) is None
    assert not Task.objects.filter(pk=task.pk).exists()
    assert len(callbacks) == 2  # the cache refresh and the event (tasks.events)


def test_id_may_be_a_string(actor: Actor, task: Task) -> None:
    task_delete(actor=actor, task_id=str(task.pk))
    assert not Task.objects.exists()


def test_other_users_task_is_not_found(other_actor: Actor, task: Task) -> None:
    with pytest.raises(TaskNotFound):
        task_delete(actor=other_actor, task_id=task.pk)
    assert Task.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize("task_id", [uuid.uuid4(), "not-a-uuid", ""])
def test_unknown_id_is_not_found(actor: Actor, task: Task, task_id: Any) -> None:
    with pytest.raises(TaskNotFound):
        task_delete(actor=actor, task_id=task_id)
    assert Task.objects.count() == 1


def test_second_delete_is_not_found(actor: Actor, task: Task) -> None:
    task_delete(actor=actor, task_id=task.pk)
    with pytest.raises(TaskNotFound):
        task_delete(actor=actor, task_id=task.pk)


def test_manager_deletes_another_users_task(manager_actor: Actor, task: Task) -> None:
    task_delete(actor=manager_actor, task_id=task.pk)
    assert not Task.objects.exists()


@pytest.mark.parametrize("actor_name", ["viewer_actor", "read_only_actor"])
def test_roles_that_cannot_write(request: pytest.FixtureRequest, task: Task, actor_name: str) -> None:
    with pytest.raises(PermissionDenied):
        task_delete(actor=request.getfixturevalue(actor_name), task_id=task.pk)
    assert Task.objects.filter(pk=task.pk).exists()


def test_deleted_task_is_not_found_although_it_was_cached(
    actor: Actor, task: Task, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    assert task_get(actor=actor, task_id=task.pk).pk == task.pk
    with django_assert_num_queries(0):
        task_get(actor=actor, task_id=task.pk)  # served from the cache

    with django_capture_on_commit_callbacks(execute=True):
        task_delete(actor=actor, task_id=task.pk)

    with django_assert_num_queries(0), pytest.raises(TaskNotFound):
        task_get(actor=actor, task_id=task.pk)  # the tombstone answers
    with pytest.raises(TaskNotFound):
        task_update(actor=actor, task_id=task.pk, changes={"title": "x"})


def test_deleted_task_leaves_the_cached_list(actor: Actor, task: Task, django_capture_on_commit_callbacks: Any) -> None:
    keep = task_create(actor=actor, data={"title": "Keep me"})
    assert {t.pk for t in task_list(actor=actor).items} == {task.pk, keep.pk}
    with django_capture_on_commit_callbacks(execute=True):
        task_delete(actor=actor, task_id=task.pk)
    assert [t.pk for t in task_list(actor=actor).items] == [keep.pk]


def test_deleting_one_task_leaves_the_others(actor: Actor, task: Task, make_task: Any, other_user: Any) -> None:
    mine = task_create(actor=actor, data={"title": "Other"})
    theirs = make_task(owner=other_user)
    task_delete(actor=actor, task_id=task.pk)
    assert set(Task.objects.values_list("pk", flat=True)) == {mine.pk, theirs.pk}


# -- expected version (docs/domain.md, "Operations") --------------------------------------------------


def test_delete_at_the_expected_version(actor: Actor, task: Task) -> None:
    task_update(actor=actor, task_id=task.pk, changes={"title": "v2"})

    task_delete(actor=actor, task_id=task.pk, expected_version=2)

    assert not Task.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize("expected_version", [0, 1, 3, 99])
def test_a_stale_expected_version_deletes_nothing(actor: Actor, task: Task, expected_version: int) -> None:
    task_update(actor=actor, task_id=task.pk, changes={"title": "v2"})

    with pytest.raises(StaleVersion) as raised:
        task_delete(actor=actor, task_id=task.pk, expected_version=expected_version)

    assert raised.value.extra == {"current_version": 2}
    assert Task.objects.filter(pk=task.pk, version=2).exists()


def test_no_expected_version_deletes_whatever_the_version(actor: Actor, task: Task) -> None:
    task_update(actor=actor, task_id=task.pk, changes={"title": "v2"})

    task_delete(actor=actor, task_id=task.pk, expected_version=None)

    assert not Task.objects.exists()


def test_an_unseen_task_is_not_found_whatever_the_expected_version(other_actor: Actor, task: Task) -> None:
    for expected_version in (1, 2):
        with pytest.raises(TaskNotFound):
            task_delete(actor=other_actor, task_id=task.pk, expected_version=expected_version)
    assert Task.objects.filter(pk=task.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_an_update_and_a_delete_of_the_same_version_one_wins(actor: Actor) -> None:
    """The version is compared under the row lock the delete takes: of a delete and an update that
    both expect version 1, exactly one applies, and the other learns why."""
    for _ in range(5):
        task = task_create(actor=actor, data={"title": "Race"})

        def call(index: int, task_id: Any = task.pk) -> Any:
            if index == 0:
                return task_delete(actor=actor, task_id=task_id, expected_version=1) or "deleted"
            return task_update(actor=actor, task_id=task_id, changes={"title": "updated"}, expected_version=1)

        deleted, updated = run_concurrently(2, call)
        if deleted == "deleted":
            assert isinstance(updated, TaskNotFound), updated
            assert not Task.objects.filter(pk=task.pk).exists()
        else:
            assert isinstance(deleted, StaleVersion), deleted
            assert deleted.extra == {"current_version": 2}
            assert isinstance(updated, Task) and updated.version == 2, updated
            assert Task.objects.get(pk=task.pk).title == "updated"


# -- the owner deleted: the database deletes their tasks, past task_delete ---------------------------------------


def test_a_deleted_users_tasks_leave_the_cache_and_every_cached_list(
    user: Any, actor: Actor, manager_actor: Actor, django_capture_on_commit_callbacks: Any
) -> None:
    first = task_create(actor=actor, data={"title": "First"})
    second = task_create(actor=actor, data={"title": "Second"})
    theirs = task_create(actor=manager_actor, data={"title": "The manager's"})
    assert task_get(actor=manager_actor, task_id=first.pk).pk == first.pk  # cached
    assert {t.pk for t in task_list(actor=manager_actor).items} == {first.pk, second.pk, theirs.pk}  # a cached page

    with django_capture_on_commit_callbacks(execute=True):
        user.delete()

    for task in (first, second):
        with pytest.raises(TaskNotFound):
            task_get(actor=manager_actor, task_id=task.pk)
    assert [t.pk for t in task_list(actor=manager_actor).items] == [theirs.pk]
