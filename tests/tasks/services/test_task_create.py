"""task_create: defaults, validation of every field, the completed/status rule, roles and the cache."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
from django.utils import timezone

from core.errors import PermissionDenied
from core.types import Actor
from tasks.models import MAX_TAG_LENGTH, MAX_TAGS, Priority, Status, Task
from tasks.selectors import task_get
from tasks.services import task_create
from tests.tasks.helpers import raises_invalid, stored

pytestmark = pytest.mark.django_db

DUE = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)


def create(actor: Actor, **data: Any) -> Task:
    return task_create(actor=actor, data={"title": "Write tests", **data})


# -- defaults and what is stored ---------------------------------------------------------------------------


def test_defaults(actor: Actor, user: Any) -> None:
    before = timezone.now()
    task = task_create(actor=actor, data={"title": "Write tests"})
    after = timezone.now()

    assert task.owner_id == user.pk
    assert task.title == "Write tests"
    assert task.description == ""
    assert task.priority == Priority.MEDIUM
    assert task.status == Status.TODO
    assert task.completed is False
    assert task.completed_at is None
    assert task.due_date is None
    assert task.tags == []
    assert task.version == 1
    assert before <= task.created_at <= after
    assert before <= task.updated_at <= after


def test_the_returned_task_is_what_is_stored(actor: Actor) -> None:
    task = create(actor, description="d", priority="high", status="in_progress", due_date=DUE, tags=["A"])
    row = stored(task)
    assert row == {
        **row,
        "title": "Write tests",
        "description": "d",
        "priority": Priority.HIGH,
        "status": Status.IN_PROGRESS,
        "completed": False,
        "completed_at": None,
        "due_date": DUE,
        "tags": ["a"],
        "version": 1,
    }
    assert row["created_at"] == task.created_at
    assert Task.objects.count() == 1


# -- title -------------------------------------------------------------------------------------------------


def test_title_is_trimmed(actor: Actor) -> None:
    task = task_create(actor=actor, data={"title": "  \t Write tests \n"})
    assert task.title == "Write tests"
    assert stored(task)["title"] == "Write tests"


@pytest.mark.parametrize("title", ["", " ", " \t\n "])
def test_blank_title_is_rejected(actor: Actor, title: str) -> None:
    with raises_invalid("title"):
        task_create(actor=actor, data={"title": title})
    assert not Task.objects.exists()


def test_title_is_required(actor: Actor) -> None:
    with raises_invalid("title"):
        task_create(actor=actor, data={"description": "no title"})


@pytest.mark.parametrize("title", [None, 42, ["x"]])
def test_title_must_be_a_string(actor: Actor, title: Any) -> None:
    with raises_invalid("title"):
        task_create(actor=actor, data={"title": title})


def test_title_of_200_characters_is_accepted(actor: Actor) -> None:
    assert create(actor, title="x" * 200).title == "x" * 200


def test_title_of_201_characters_is_rejected(actor: Actor) -> None:
    with raises_invalid("title"):
        create(actor, title="x" * 201)
    assert not Task.objects.exists()


def test_title_length_is_checked_after_trimming(actor: Actor) -> None:
    """title is 1 to 200 chars, trimmed; the surrounding blanks are not part of the title."""
    task = create(actor, title="  " + "x" * 200 + " ")
    assert task.title == "x" * 200


# -- description -------------------------------------------------------------------------------------------


def test_description_of_10000_characters_is_accepted(actor: Actor) -> None:
    assert len(create(actor, description="d" * 10_000).description) == 10_000


def test_description_over_10000_characters_is_rejected(actor: Actor) -> None:
    with raises_invalid("description"):
        create(actor, description="d" * 10_001)
    assert not Task.objects.exists()


@pytest.mark.parametrize("description", [None, 7])
def test_description_must_be_a_string(actor: Actor, description: Any) -> None:
    with raises_invalid("description"):
        create(actor, description=description)


# -- priority ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"), [("low", Priority.LOW), ("medium", Priority.MEDIUM), ("high", Priority.HIGH)]
)
def test_priority_by_name(actor: Actor, name: str, expected: Priority) -> None:
    task = create(actor, priority=name)
    assert task.priority == expected
    assert stored(task)["priority"] == expected


def test_priority_as_member(actor: Actor) -> None:
    assert create(actor, priority=Priority.LOW).priority == Priority.LOW


@pytest.mark.parametrize("priority", ["urgent", "", "Highest", 7, 0])
def test_invalid_priority_is_rejected(actor: Actor, priority: Any) -> None:
    with raises_invalid("priority"):
        create(actor, priority=priority)
    assert not Task.objects.exists()


# -- status and completed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.TODO, Status.IN_PROGRESS])
def test_open_status(actor: Actor, status: str) -> None:
    task = create(actor, status=status)
    assert (task.status, task.completed, task.completed_at) == (status, False, None)


@pytest.mark.parametrize("status", ["done", "TODO", ""])
def test_invalid_status_is_rejected(actor: Actor, status: str) -> None:
    with raises_invalid("status"):
        create(actor, status=status)


def test_status_must_be_a_string(actor: Actor) -> None:
    with raises_invalid("status"):
        create(actor, status=1)


def test_status_completed_sets_completed_and_completed_at(actor: Actor) -> None:
    before = timezone.now()
    task = create(actor, status="completed")
    assert task.completed is True
    assert task.completed_at is not None
    assert before <= task.completed_at <= timezone.now()
    row = stored(task)
    assert (row["status"], row["completed"], row["completed_at"]) == ("completed", True, task.completed_at)


def test_completed_true_sets_status_and_completed_at(actor: Actor) -> None:
    task = create(actor, completed=True)
    assert task.status == Status.COMPLETED
    assert task.completed_at is not None
    assert stored(task)["status"] == Status.COMPLETED


def test_completed_false_keeps_open_status(actor: Actor) -> None:
    task = create(actor, completed=False, status="in_progress")
    assert (task.status, task.completed, task.completed_at) == (Status.IN_PROGRESS, False, None)


def test_both_completed_and_status_completed_agree(actor: Actor) -> None:
    task = create(actor, completed=True, status="completed")
    assert (task.status, task.completed) == (Status.COMPLETED, True)
    assert task.completed_at is not None


@pytest.mark.parametrize(("status", "completed"), [("todo", True), ("in_progress", True), ("completed", False)])
def test_completed_contradicting_status_is_rejected(actor: Actor, status: str, completed: bool) -> None:
    with raises_invalid("completed"):
        create(actor, status=status, completed=completed)
    assert not Task.objects.exists()


@pytest.mark.parametrize("completed", ["yes", 1, None])
def test_completed_must_be_a_boolean(actor: Actor, completed: Any) -> None:
    with raises_invalid("completed"):
        create(actor, completed=completed)


# -- tags --------------------------------------------------------------------------------------------------


def test_tags_are_trimmed_lowercased_and_deduplicated_in_order(actor: Actor) -> None:
    task = create(actor, tags=[" Work ", "HOME", "work", "home ", "Errands"])
    assert task.tags == ["work", "home", "errands"]
    assert stored(task)["tags"] == ["work", "home", "errands"]


def test_tags_may_be_a_tuple(actor: Actor) -> None:
    assert create(actor, tags=("a", "b")).tags == ["a", "b"]


def test_tags_at_the_limits_are_accepted(actor: Actor) -> None:
    tags = [f"tag{n}" for n in range(MAX_TAGS)]
    assert create(actor, tags=tags).tags == tags
    assert create(actor, tags=["x" * MAX_TAG_LENGTH]).tags == ["x" * MAX_TAG_LENGTH]
    assert create(actor, tags=["  " + "x" * MAX_TAG_LENGTH + "  "]).tags == ["x" * MAX_TAG_LENGTH]
    assert create(actor, tags=["a"]).tags == ["a"]


def test_duplicates_do_not_count_towards_the_limit(actor: Actor) -> None:
    tags = [f"tag{n}" for n in range(MAX_TAGS)]
    assert create(actor, tags=[*tags, "TAG0", " tag1 "]).tags == tags


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param([f"tag{n}" for n in range(MAX_TAGS + 1)], id="21 tags"),
        pytest.param(["x" * (MAX_TAG_LENGTH + 1)], id="51 chars"),
        pytest.param([""], id="empty"),
        pytest.param(["   "], id="blank"),
        pytest.param(["ok", 3], id="int"),
        pytest.param([None], id="None"),
        pytest.param([["nested"]], id="list"),
        pytest.param("work", id="a string"),
        pytest.param({"work": True}, id="a dict"),
        pytest.param(None, id="None list"),
    ],
)
def test_invalid_tags_are_rejected(actor: Actor, tags: Any) -> None:
    with raises_invalid("tags"):
        create(actor, tags=tags)
    assert not Task.objects.exists()


# -- due date ----------------------------------------------------------------------------------------------


def test_aware_due_date_is_kept(actor: Actor) -> None:
    due = datetime(2031, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    assert create(actor, due_date=due).due_date == due
    assert Task.objects.get().due_date == due


def test_due_date_in_another_time_zone_is_the_same_instant(actor: Actor) -> None:
    due = datetime(2031, 1, 2, 12, 0, tzinfo=dt_timezone(timedelta(hours=5)))
    task = create(actor, due_date=due)
    assert Task.objects.get(pk=task.pk).due_date == datetime(2031, 1, 2, 7, 0, tzinfo=UTC)


def test_aware_iso_string_due_date_is_parsed(actor: Actor) -> None:
    task = create(actor, due_date="2031-05-17T09:30:00+00:00")
    assert task.due_date == DUE
    assert stored(task)["due_date"] == DUE


def test_naive_due_date_is_rejected(actor: Actor) -> None:
    with raises_invalid("due_date"):
        create(actor, due_date=datetime(2031, 5, 17, 9, 30))  # noqa: DTZ001
    assert not Task.objects.exists()


@pytest.mark.parametrize("due_date", ["2031-05-17T09:30:00", "2031-05-17"])
def test_naive_iso_string_due_date_is_rejected(actor: Actor, due_date: str) -> None:
    with raises_invalid("due_date"):
        create(actor, due_date=due_date)


@pytest.mark.parametrize("due_date", ["tomorrow", "2031-13-45T00:00:00Z"])
def test_unparsable_due_date_is_rejected(actor: Actor, due_date: str) -> None:
    with raises_invalid("due_date"):
        create(actor, due_date=due_date)


@pytest.mark.parametrize(
    "due_date",
    [
        datetime(1, 1, 1, tzinfo=dt_timezone(timedelta(hours=5))),
        datetime(9999, 12, 31, 23, 0, tzinfo=dt_timezone(timedelta(hours=-5))),
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_due_date_without_a_utc_equivalent_is_rejected(actor: Actor, due_date: Any) -> None:
    with raises_invalid("due_date"):
        create(actor, due_date=due_date)
    assert not Task.objects.exists()


@pytest.mark.parametrize("due_date", [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)])
def test_due_date_at_the_edges_of_the_calendar(actor: Actor, due_date: datetime) -> None:
    task = create(actor, due_date=due_date)
    assert stored(task)["due_date"] == due_date


@pytest.mark.parametrize("due_date", [5, 1.5, ["2031-05-17T09:30:00Z"]])
def test_due_date_of_another_type_is_invalid_input(actor: Actor, due_date: Any) -> None:
    """A wrong type is the client's mistake (InvalidInput), not a server error."""
    with raises_invalid("due_date"):
        create(actor, due_date=due_date)


# -- fields that cannot be set -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"colour": "red"},
        {"id": "0b0b0b0b-0000-4000-8000-000000000000"},
        {"owner": 1},
        {"owner_id": 1},
        {"version": 7},
        {"created_at": DUE},
        {"updated_at": DUE},
        {"completed_at": DUE},
    ],
)
def test_unknown_or_uneditable_fields_are_rejected(actor: Actor, data: dict[str, Any]) -> None:
    with raises_invalid(*data):
        create(actor, **data)
    assert not Task.objects.exists()


def test_every_unknown_field_is_named(actor: Actor) -> None:
    with raises_invalid("colour", "version"):
        create(actor, colour="red", version=3)


# -- roles and owners --------------------------------------------------------------------------------------


def test_viewer_may_not_create(viewer_actor: Actor) -> None:
    with pytest.raises(PermissionDenied):
        create(viewer_actor)
    assert not Task.objects.exists()


def test_read_only_actor_may_not_create(read_only_actor: Actor) -> None:
    with pytest.raises(PermissionDenied):
        create(read_only_actor)
    assert not Task.objects.exists()


def test_read_only_manager_may_not_create(manager_actor: Actor) -> None:
    with pytest.raises(PermissionDenied):
        create(dataclasses.replace(manager_actor, read_only=True))


def test_actor_without_role_may_not_create(user: Any) -> None:
    with pytest.raises(PermissionDenied):
        create(Actor(id=user.pk, username=user.username, roles=frozenset()))


def test_manager_creates_for_another_owner(manager_actor: Actor, other_user: Any) -> None:
    task = task_create(actor=manager_actor, data={"title": "For you"}, owner_id=other_user.pk)
    assert task.owner_id == other_user.pk
    assert stored(task)["owner_id"] == other_user.pk


def test_staff_creates_for_another_owner(user: Any, other_user: Any) -> None:
    staff = Actor(id=user.pk, username=user.username, roles=frozenset(), is_staff=True)
    assert task_create(actor=staff, data={"title": "x"}, owner_id=other_user.pk).owner_id == other_user.pk


def test_manager_without_owner_id_creates_for_self(manager_actor: Actor, manager: Any) -> None:
    assert task_create(actor=manager_actor, data={"title": "Mine"}).owner_id == manager.pk


def test_editor_may_not_create_for_another_owner(actor: Actor, other_user: Any) -> None:
    with pytest.raises(PermissionDenied):
        task_create(actor=actor, data={"title": "For you"}, owner_id=other_user.pk)
    assert not Task.objects.exists()


def test_editor_may_name_themselves_as_owner(actor: Actor, user: Any) -> None:
    assert task_create(actor=actor, data={"title": "x"}, owner_id=user.pk).owner_id == user.pk


def test_manager_creating_for_a_missing_owner_is_invalid(manager_actor: Actor) -> None:
    with raises_invalid("owner"):
        task_create(actor=manager_actor, data={"title": "x"}, owner_id=987_654_321)
    assert not Task.objects.exists()


# -- side effects on commit --------------------------------------------------------------------------------


def test_task_is_cached_on_commit(
    actor: Actor, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        task = create(actor, tags=["Home"], priority="high")
    assert len(callbacks) == 2  # the cache refresh and the event (tasks.events)

    with django_assert_num_queries(0):
        cached = task_get(actor=actor, task_id=task.pk)
    assert cached.pk == task.pk
    assert (cached.title, cached.tags, cached.priority, cached.version) == ("Write tests", ["home"], Priority.HIGH, 1)
    assert cached.owner_id == task.owner_id


def test_nothing_is_cached_before_commit(
    actor: Actor, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        task = create(actor)
    with django_assert_num_queries(1):
        assert task_get(actor=actor, task_id=task.pk).pk == task.pk


def test_rejected_create_schedules_nothing(actor: Actor, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks, raises_invalid("title"):
        task_create(actor=actor, data={"title": " "})
    assert callbacks == []
