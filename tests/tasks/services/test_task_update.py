"""task_update: partial changes, versions, visibility, roles, the completed/status rule, the cache."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
from django.utils import timezone

from core.errors import PermissionDenied, StaleVersion
from core.types import Actor
from tasks.models import Priority, Status, Task
from tasks.selectors import TaskNotFound, task_get
from tasks.services import task_complete_many, task_create, task_update
from tests.tasks.helpers import raises_invalid, run_concurrently, stored

pytestmark = pytest.mark.django_db

DUE = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)


@pytest.fixture
def task(actor: Actor) -> Task:
    return task_create(
        actor=actor,
        data={
            "title": "Buy milk",
            "description": "Two litres",
            "priority": "low",
            "status": "in_progress",
            "due_date": DUE,
            "tags": ["home", "shop"],
        },
    )


@pytest.fixture
def done(actor: Actor) -> Task:
    return task_create(actor=actor, data={"title": "Done already", "completed": True})


def update(actor: Actor, task: Task, **changes: Any) -> Task:
    return task_update(actor=actor, task_id=task.pk, changes=changes)


# -- partial changes and versions --------------------------------------------------------------------------


def test_changes_only_the_given_field(actor: Actor, task: Task) -> None:
    before = stored(task)
    updated = update(actor, task, title="Buy oat milk")
    after = stored(task)

    assert updated.title == "Buy oat milk"
    assert updated.version == 2
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"title", "version", "updated_at"}
    assert after["updated_at"] > before["updated_at"]
    assert after["version"] == 2


@pytest.mark.parametrize(
    ("changes", "column", "expected"),
    [
        ({"description": ""}, "description", ""),
        ({"priority": "high"}, "priority", Priority.HIGH),
        ({"priority": Priority.MEDIUM}, "priority", Priority.MEDIUM),
        ({"status": "todo"}, "status", Status.TODO),
        ({"due_date": None}, "due_date", None),
        ({"due_date": DUE + timedelta(days=1)}, "due_date", DUE + timedelta(days=1)),
        ({"due_date": "2032-01-01T00:00:00Z"}, "due_date", datetime(2032, 1, 1, tzinfo=UTC)),
        ({"tags": []}, "tags", []),
        ({"tags": [" New ", "NEW", "old"]}, "tags", ["new", "old"]),
        ({"title": "  Trimmed  "}, "title", "Trimmed"),
    ],
)
def test_each_editable_field(actor: Actor, task: Task, changes: dict[str, Any], column: str, expected: Any) -> None:
    updated = task_update(actor=actor, task_id=task.pk, changes=changes)
    assert getattr(updated, column) == expected
    assert stored(task)[column] == expected
    assert updated.version == 2


def test_several_fields_at_once_bump_the_version_once(actor: Actor, task: Task) -> None:
    updated = update(actor, task, title="New", description="Other", priority="high", tags=["x"])
    assert updated.version == 2
    row = stored(task)
    assert (row["title"], row["description"], row["priority"], row["tags"], row["version"]) == (
        "New",
        "Other",
        Priority.HIGH,
        ["x"],
        2,
    )


def test_every_change_bumps_the_version(actor: Actor, task: Task) -> None:
    for number, title in enumerate(["a", "b", "c"], start=2):
        assert update(actor, task, title=title).version == number
    assert stored(task)["version"] == 4


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"title": "Buy milk"},
        {"title": "  Buy milk "},
        {"priority": "low"},
        {"priority": Priority.LOW},
        {"status": "in_progress"},
        {"completed": False},
        {"due_date": DUE},
        {"tags": ["HOME", "shop", "home"]},
        {"title": "Buy milk", "description": "Two litres", "tags": ["home", "shop"]},
    ],
)
def test_change_that_changes_nothing_keeps_the_version(
    actor: Actor, task: Task, changes: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    before = stored(task)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = task_update(actor=actor, task_id=task.pk, changes=changes)
    assert result.version == 1
    assert stored(task) == before
    assert callbacks == []


def test_due_date_in_another_zone_for_the_same_instant_is_no_change(actor: Actor, task: Task) -> None:
    same = DUE.astimezone(dt_timezone(timedelta(hours=-3)))
    assert update(actor, task, due_date=same).version == 1


def test_task_id_may_be_a_string(actor: Actor, task: Task) -> None:
    assert task_update(actor=actor, task_id=str(task.pk), changes={"title": "s"}).title == "s"


# -- expected version --------------------------------------------------------------------------------------


def test_expected_version_that_matches_applies(actor: Actor, task: Task) -> None:
    updated = task_update(actor=actor, task_id=task.pk, changes={"title": "v"}, expected_version=1)
    assert updated.version == 2
    again = task_update(actor=actor, task_id=task.pk, changes={"title": "w"}, expected_version=2)
    assert again.version == 3


@pytest.mark.parametrize("expected", [0, 2, 99])
def test_stale_expected_version_is_rejected(actor: Actor, task: Task, expected: int) -> None:
    before = stored(task)
    with pytest.raises(StaleVersion) as info:
        task_update(actor=actor, task_id=task.pk, changes={"title": "late"}, expected_version=expected)
    assert info.value.extra == {"current_version": 1}
    assert info.value.code == "stale_version"
    assert stored(task) == before


def test_a_set_of_expected_versions_applies_when_it_holds_the_current_one(actor: Actor, task: Task) -> None:
    updated = task_update(actor=actor, task_id=task.pk, changes={"title": "v"}, expected_version=frozenset({1, 99}))
    assert updated.version == 2


@pytest.mark.parametrize("expected", [frozenset(), frozenset({2, 99})])
def test_a_set_of_expected_versions_without_the_current_one_is_stale(
    actor: Actor, task: Task, expected: frozenset[int]
) -> None:
    before = stored(task)
    with pytest.raises(StaleVersion) as info:
        task_update(actor=actor, task_id=task.pk, changes={"title": "late"}, expected_version=expected)
    assert info.value.extra == {"current_version": 1}
    assert stored(task) == before


def test_stale_version_names_the_current_version(actor: Actor, task: Task) -> None:
    update(actor, task, title="one")
    update(actor, task, title="two")
    with pytest.raises(StaleVersion) as info:
        task_update(actor=actor, task_id=task.pk, changes={"title": "three"}, expected_version=1)
    assert info.value.extra["current_version"] == 3


def test_stale_version_wins_over_a_no_op(actor: Actor, task: Task) -> None:
    with pytest.raises(StaleVersion):
        task_update(actor=actor, task_id=task.pk, changes={}, expected_version=5)


# -- visibility and roles ----------------------------------------------------------------------------------


def test_other_users_task_is_not_found(other_actor: Actor, task: Task) -> None:
    before = stored(task)
    with pytest.raises(TaskNotFound):
        update(other_actor, task, title="mine now")
    assert stored(task) == before


def test_other_users_task_is_not_found_even_with_its_version(other_actor: Actor, task: Task) -> None:
    with pytest.raises(TaskNotFound):
        task_update(actor=other_actor, task_id=task.pk, changes={"title": "x"}, expected_version=1)


@pytest.mark.parametrize("task_id", [uuid.uuid4(), str(uuid.uuid4()), "not-a-uuid", "", "1"])
def test_unknown_or_malformed_id_is_not_found(actor: Actor, task_id: Any) -> None:
    with pytest.raises(TaskNotFound):
        task_update(actor=actor, task_id=task_id, changes={"title": "x"})


def test_manager_updates_another_users_task(manager_actor: Actor, task: Task, user: Any) -> None:
    updated = update(manager_actor, task, title="Managed")
    assert updated.title == "Managed"
    assert updated.version == 2
    assert stored(task)["owner_id"] == user.pk


def test_viewer_may_not_update_even_own_task(viewer: Any, viewer_actor: Actor, make_task: Callable[..., Task]) -> None:
    own = make_task(owner=viewer, title="mine")
    with pytest.raises(PermissionDenied):
        update(viewer_actor, own, title="changed")
    assert stored(own)["title"] == "mine"


def test_read_only_actor_may_not_update(read_only_actor: Actor, task: Task) -> None:
    with pytest.raises(PermissionDenied):
        update(read_only_actor, task, title="changed")
    assert stored(task)["version"] == 1


# -- fields that cannot be edited and invalid values -------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"id": uuid.uuid4()},
        {"owner": 1},
        {"owner_id": 1},
        {"version": 5},
        {"created_at": DUE},
        {"updated_at": DUE},
        {"completed_at": DUE},
        {"colour": "red"},
        {"title": "ok", "version": 9},
    ],
)
def test_uneditable_fields_are_rejected(actor: Actor, task: Task, changes: dict[str, Any]) -> None:
    before = stored(task)
    with raises_invalid(*(set(changes) - {"title"})):
        task_update(actor=actor, task_id=task.pk, changes=changes)
    assert stored(task) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": None}, "title"),
        ({"description": "d" * 10_001}, "description"),
        ({"priority": "urgent"}, "priority"),
        ({"priority": 9}, "priority"),
        ({"status": "done"}, "status"),
        ({"completed": "yes"}, "completed"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"tags": [f"t{n}" for n in range(21)]}, "tags"),
        ({"tags": "home"}, "tags"),
        ({"due_date": datetime(2031, 1, 1)}, "due_date"),  # noqa: DTZ001
        ({"due_date": "2031-01-01T00:00:00"}, "due_date"),
    ],
)
def test_invalid_values_are_rejected(actor: Actor, task: Task, changes: dict[str, Any], field: str) -> None:
    before = stored(task)
    with raises_invalid(field):
        task_update(actor=actor, task_id=task.pk, changes=changes)
    assert stored(task) == before


def test_rejected_update_leaves_the_cache_alone(
    actor: Actor, task: Task, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks, raises_invalid("title"):
        update(actor, task, title=" ")
    assert callbacks == []


# -- completed and status ----------------------------------------------------------------------------------


def test_completed_true_completes(actor: Actor, task: Task) -> None:
    before = timezone.now()
    updated = update(actor, task, completed=True)
    assert (updated.status, updated.completed) == (Status.COMPLETED, True)
    assert updated.completed_at is not None and updated.completed_at >= before
    row = stored(task)
    assert (row["status"], row["completed"], row["completed_at"]) == (Status.COMPLETED, True, updated.completed_at)
    assert row["version"] == 2


def test_status_completed_completes(actor: Actor, task: Task) -> None:
    updated = update(actor, task, status="completed")
    assert (updated.status, updated.completed) == (Status.COMPLETED, True)
    assert stored(task)["completed_at"] is not None


def test_completed_false_reopens_as_todo(actor: Actor, done: Task) -> None:
    updated = update(actor, done, completed=False)
    assert (updated.status, updated.completed, updated.completed_at) == (Status.TODO, False, None)
    row = stored(done)
    assert (row["status"], row["completed"], row["completed_at"]) == (Status.TODO, False, None)


@pytest.mark.parametrize("status", ["todo", "in_progress"])
def test_leaving_completed_by_status_clears_completed_at(actor: Actor, done: Task, status: str) -> None:
    updated = update(actor, done, status=status)
    assert (updated.status, updated.completed, updated.completed_at) == (status, False, None)
    assert stored(done)["completed_at"] is None


def test_completed_false_on_open_task_keeps_its_status(actor: Actor, task: Task) -> None:
    assert update(actor, task, completed=False).status == Status.IN_PROGRESS


def test_completing_again_keeps_completed_at(actor: Actor, done: Task) -> None:
    first_completed_at = stored(done)["completed_at"]
    assert update(actor, done, completed=True).version == 1
    assert update(actor, done, status="completed").version == 1
    assert update(actor, done, title="Still done").completed_at == first_completed_at
    assert stored(done)["completed_at"] == first_completed_at


def test_reopen_then_complete_sets_a_new_completed_at(actor: Actor, done: Task) -> None:
    first = stored(done)["completed_at"]
    update(actor, done, completed=False)
    again = update(actor, done, completed=True)
    assert again.completed_at is not None and again.completed_at > first


@pytest.mark.parametrize(("status", "completed"), [("todo", True), ("in_progress", True), ("completed", False)])
def test_contradicting_completed_and_status_are_rejected(
    actor: Actor, task: Task, status: str, completed: bool
) -> None:
    before = stored(task)
    with raises_invalid("completed"):
        update(actor, task, status=status, completed=completed)
    assert stored(task) == before


def test_agreeing_completed_and_status_apply(actor: Actor, done: Task) -> None:
    updated = update(actor, done, status="in_progress", completed=False)
    assert (updated.status, updated.completed, updated.completed_at) == (Status.IN_PROGRESS, False, None)


# -- the cache ---------------------------------------------------------------------------------------------


def test_cache_is_refreshed_on_commit(
    actor: Actor, task: Task, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    assert task_get(actor=actor, task_id=task.pk).title == "Buy milk"  # now cached
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        update(actor, task, title="Buy oat milk", completed=True)
    assert len(callbacks) == 2  # the cache refresh and the event (tasks.events)

    with django_assert_num_queries(0):
        cached = task_get(actor=actor, task_id=task.pk)
    assert (cached.title, cached.version, cached.status, cached.completed) == ("Buy oat milk", 2, "completed", True)
    assert cached.completed_at == stored(task)["completed_at"]
    assert cached.updated_at == stored(task)["updated_at"]


def test_manager_update_refreshes_the_owners_view(
    actor: Actor, manager_actor: Actor, task: Task, django_capture_on_commit_callbacks: Any
) -> None:
    task_get(actor=actor, task_id=task.pk)
    with django_capture_on_commit_callbacks(execute=True):
        update(manager_actor, task, title="Managed")
    assert task_get(actor=actor, task_id=task.pk).title == "Managed"


# -- bulk completion (the admin action) --------------------------------------------------------------------


def test_complete_many(actor: Actor, task: Task, done: Task) -> None:
    task_complete_many(actor=actor, task_ids=[task.pk, done.pk])
    assert stored(task)["completed"] is True
    assert stored(task)["version"] == 2
    assert stored(done)["version"] == 1


def test_complete_many_does_not_reach_other_users_tasks(other_actor: Actor, task: Task) -> None:
    with pytest.raises(TaskNotFound):
        task_complete_many(actor=other_actor, task_ids=[task.pk])
    assert stored(task)["completed"] is False


# -- concurrency -------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_updates_of_the_same_version_one_wins(actor: Actor) -> None:
    task = task_create(actor=actor, data={"title": "Race"})

    def call(index: int) -> Any:
        return task_update(actor=actor, task_id=task.pk, changes={"title": f"winner {index}"}, expected_version=1)

    results = run_concurrently(2, call)

    winners = [r for r in results if isinstance(r, Task)]
    losers = [r for r in results if isinstance(r, StaleVersion)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert winners[0].version == 2
    assert losers[0].extra == {"current_version": 2}
    row = stored(task)
    assert (row["title"], row["version"]) == (winners[0].title, 2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_without_expected_version_all_apply(actor: Actor) -> None:
    task = task_create(actor=actor, data={"title": "Counter"})
    results = run_concurrently(
        4, lambda index: task_update(actor=actor, task_id=task.pk, changes={"title": f"t{index}"})
    )
    assert all(isinstance(r, Task) for r in results), results
    assert sorted(r.version for r in results) == [2, 3, 4, 5]
    assert stored(task)["version"] == 5
