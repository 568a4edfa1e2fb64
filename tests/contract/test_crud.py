"""Create, read, update, delete; defaults and normalisation of docs/domain.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from django.utils import timezone as django_timezone

from tests.contract.drivers import Driver

DUE = datetime(2030, 1, 31, 17, 0, tzinfo=UTC)


def test_crud_round_trip(alice: Driver, user: Any) -> None:
    created = alice.create({"title": "Write the report", "priority": "high", "due_date": DUE}).unwrap()
    assert created["owner"] == user.pk
    assert created["title"] == "Write the report"
    assert created["version"] == 1

    assert alice.get(created["id"]).unwrap() == created

    updated = alice.update(created["id"], {"status": "in_progress", "description": "Draft first"}).unwrap()
    assert updated["status"] == "in_progress"
    assert updated["description"] == "Draft first"
    assert updated["version"] == 2
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] >= created["updated_at"]
    assert {k: v for k, v in updated.items() if k not in {"status", "description", "version", "updated_at"}} == {
        k: v for k, v in created.items() if k not in {"status", "description", "version", "updated_at"}
    }

    assert alice.get(created["id"]).unwrap() == updated

    deleted = alice.delete(created["id"])
    assert deleted.ok and deleted.value is None

    assert alice.get(created["id"]).error == "not_found"
    assert alice.update(created["id"], {"title": "Back?"}).error == "not_found"
    assert alice.delete(created["id"]).error == "not_found"
    assert alice.list().unwrap().items == []


def test_unknown_and_malformed_ids_are_not_found(alice: Driver) -> None:
    for task_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        assert alice.get(task_id).error == "not_found"
        assert alice.update(task_id, {"title": "x"}).error == "not_found"
        assert alice.delete(task_id).error == "not_found"


def test_defaults(alice: Driver) -> None:
    before = django_timezone.now()

    task = alice.create({"title": "Buy milk"}).unwrap()

    assert task["description"] == ""
    assert task["priority"] == "medium"
    assert task["status"] == "todo"
    assert task["completed"] is False
    assert task["due_date"] is None
    assert task["tags"] == []
    assert task["completed_at"] is None
    assert task["version"] == 1
    assert before <= task["created_at"] <= django_timezone.now()
    assert task["created_at"].tzinfo is not None
    assert task["updated_at"] >= task["created_at"]


def test_title_trimmed_and_tags_normalised(alice: Driver) -> None:
    task = alice.create({"title": "  Buy milk \t", "tags": [" Home", "home", "ERRANDS ", "Home "]}).unwrap()

    assert task["title"] == "Buy milk"
    assert task["tags"] == ["home", "errands"]
    assert alice.get(task["id"]).unwrap() == task

    changed = alice.update(task["id"], {"title": " Buy oat milk ", "tags": ["Shop", "shop", " SHOP "]}).unwrap()
    assert changed["title"] == "Buy oat milk"
    assert changed["tags"] == ["shop"]


def test_a_title_of_200_characters_after_trimming_is_accepted(alice: Driver) -> None:
    """the title is 1-200 chars *trimmed* (tasks.models: trimmed before its length is checked)."""
    title = "x" * 200

    task = alice.create({"title": f"  {title}  "}).unwrap()

    assert task["title"] == title
    assert alice.update(task["id"], {"title": f" {title} "}).unwrap()["title"] == title


def test_twenty_tags_after_deduplication_are_accepted(alice: Driver) -> None:
    tags = [f"tag{n}" for n in range(20)]

    task = alice.create({"title": "Many tags", "tags": tags + [tag.upper() for tag in tags]}).unwrap()

    assert task["tags"] == tags


def test_due_date_keeps_its_instant_whatever_the_offset(alice: Driver) -> None:
    in_paris = datetime(2030, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))

    task = alice.create({"title": "Meet", "due_date": in_paris}).unwrap()

    assert task["due_date"] == in_paris
    assert alice.get(task["id"]).unwrap()["due_date"] == in_paris
    cleared = alice.update(task["id"], {"due_date": None}).unwrap()
    assert cleared["due_date"] is None
    assert alice.get(task["id"]).unwrap()["due_date"] is None


def test_completed_follows_status_and_status_follows_completed(alice: Driver) -> None:
    task = alice.create({"title": "Ship it"}).unwrap()

    done = alice.update(task["id"], {"completed": True}).unwrap()
    assert (done["status"], done["completed"]) == ("completed", True)
    assert done["completed_at"] is not None

    reopened = alice.update(task["id"], {"status": "in_progress"}).unwrap()
    assert (reopened["status"], reopened["completed"], reopened["completed_at"]) == ("in_progress", False, None)

    done_again = alice.update(task["id"], {"status": "completed"}).unwrap()
    assert (done_again["status"], done_again["completed"]) == ("completed", True)
    assert done_again["completed_at"] is not None

    undone = alice.update(task["id"], {"completed": False}).unwrap()
    assert (undone["status"], undone["completed"], undone["completed_at"]) == ("todo", False, None)
    assert alice.get(task["id"]).unwrap() == undone


def test_create_completed_either_way(alice: Driver) -> None:
    by_status = alice.create({"title": "a", "status": "completed"}).unwrap()
    by_flag = alice.create({"title": "b", "completed": True}).unwrap()
    both = alice.create({"title": "c", "status": "completed", "completed": True}).unwrap()

    for task in (by_status, by_flag, both):
        assert (task["status"], task["completed"]) == ("completed", True)
        assert task["completed_at"] is not None


def test_version_grows_by_one_per_change_and_not_on_a_no_op(alice: Driver) -> None:
    task = alice.create({"title": "Count", "priority": "low"}).unwrap()

    assert alice.update(task["id"], {"priority": "high"}).unwrap()["version"] == 2
    assert alice.update(task["id"], {"priority": "high"}).unwrap()["version"] == 2
    assert alice.update(task["id"], {"title": "Count!", "tags": ["a"]}).unwrap()["version"] == 3
    assert alice.get(task["id"]).unwrap()["version"] == 3
