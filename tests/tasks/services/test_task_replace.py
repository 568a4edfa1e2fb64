"""task_replace (HTTP PUT): every editable field is set, fields left out go back to their defaults."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from core.errors import PermissionDenied, StaleVersion
from core.types import Actor
from tasks.models import Priority, Status, Task
from tasks.selectors import TaskNotFound
from tasks.services import task_create, task_replace
from tests.tasks.helpers import raises_invalid, stored

pytestmark = pytest.mark.django_db

DUE = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)
FULL = {
    "title": "Buy milk",
    "description": "Two litres",
    "priority": "high",
    "status": "in_progress",
    "due_date": DUE,
    "tags": ["home", "shop"],
}


@pytest.fixture
def task(actor: Actor) -> Task:
    return task_create(actor=actor, data=FULL)


def replace(actor: Actor, task: Task, **data: Any) -> Task:
    return task_replace(actor=actor, task_id=task.pk, data=data)


def test_omitted_fields_go_back_to_their_defaults(actor: Actor, task: Task) -> None:
    replaced = replace(actor, task, title="Only a title")
    row = stored(task)
    for result in (row, {name: getattr(replaced, name) for name in row}):
        assert result["title"] == "Only a title"
        assert result["description"] == ""
        assert result["priority"] == Priority.MEDIUM
        assert result["status"] == Status.TODO
        assert result["completed"] is False
        assert result["completed_at"] is None
        assert result["due_date"] is None
        assert result["tags"] == []
        assert result["version"] == 2


def test_given_fields_are_set(actor: Actor, task: Task) -> None:
    replaced = replace(actor, task, title="New", description="d", priority="low", tags=["A"], due_date=None)
    row = stored(task)
    assert (row["title"], row["description"], row["priority"], row["tags"], row["due_date"]) == (
        "New",
        "d",
        Priority.LOW,
        ["a"],
        None,
    )
    assert row["status"] == Status.TODO
    assert replaced.version == 2


def test_title_is_required(actor: Actor, task: Task) -> None:
    before = stored(task)
    with raises_invalid("title"):
        replace(actor, task, description="no title")
    assert stored(task) == before


def test_blank_title_is_rejected(actor: Actor, task: Task) -> None:
    with raises_invalid("title"):
        replace(actor, task, title="  ")


def test_same_content_keeps_the_version(actor: Actor, task: Task, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert task_replace(actor=actor, task_id=task.pk, data=FULL).version == 1
    assert callbacks == []


def test_status_completed_alone_completes(actor: Actor, task: Task) -> None:
    replaced = replace(actor, task, title="x", status="completed")
    assert (replaced.status, replaced.completed) == (Status.COMPLETED, True)
    assert stored(task)["completed_at"] is not None


def test_completed_alone_completes(actor: Actor, task: Task) -> None:
    replaced = replace(actor, task, title="x", completed=True)
    assert (replaced.status, replaced.completed) == (Status.COMPLETED, True)
    assert replaced.completed_at is not None


def test_completed_false_alone_reopens_a_completed_task(actor: Actor) -> None:
    done = task_create(actor=actor, data={"title": "x", "completed": True})
    replaced = replace(actor, done, title="x", completed=False)
    assert (replaced.status, replaced.completed, replaced.completed_at) == (Status.TODO, False, None)


def test_replacing_a_completed_task_without_status_reopens_it(actor: Actor) -> None:
    done = task_create(actor=actor, data={"title": "x", "completed": True})
    replaced = replace(actor, done, title="x")
    assert (replaced.status, replaced.completed, replaced.completed_at) == (Status.TODO, False, None)
    assert stored(done)["completed_at"] is None


def test_status_and_completed_that_agree(actor: Actor, task: Task) -> None:
    replaced = replace(actor, task, title="x", status="completed", completed=True)
    assert replaced.completed is True


def test_status_and_completed_that_contradict(actor: Actor, task: Task) -> None:
    with raises_invalid("completed"):
        replace(actor, task, title="x", status="todo", completed=True)


def test_uneditable_fields_are_rejected(actor: Actor, task: Task) -> None:
    with raises_invalid("version", "owner"):
        replace(actor, task, title="x", version=3, owner=1)


def test_expected_version(actor: Actor, task: Task) -> None:
    with pytest.raises(StaleVersion) as info:
        task_replace(actor=actor, task_id=task.pk, data={"title": "x"}, expected_version=2)
    assert info.value.extra == {"current_version": 1}
    assert task_replace(actor=actor, task_id=task.pk, data={"title": "x"}, expected_version=1).version == 2


def test_other_users_task_is_not_found(other_actor: Actor, task: Task) -> None:
    with pytest.raises(TaskNotFound):
        replace(other_actor, task, title="x")
    assert stored(task)["title"] == "Buy milk"


def test_unknown_id_is_not_found(actor: Actor) -> None:
    with pytest.raises(TaskNotFound):
        task_replace(actor=actor, task_id=uuid.uuid4(), data={"title": "x"})


def test_manager_replaces_another_users_task(manager_actor: Actor, task: Task) -> None:
    assert replace(manager_actor, task, title="Managed").title == "Managed"


@pytest.mark.parametrize("actor_name", ["viewer_actor", "read_only_actor"])
def test_roles_that_cannot_write(request: pytest.FixtureRequest, task: Task, actor_name: str) -> None:
    with pytest.raises(PermissionDenied):
        replace(request.getfixturevalue(actor_name), task, title="x")
    assert stored(task)["version"] == 1
