"""tasks.models: the database keeps the Task invariants even for writes that bypass the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.models import MAX_TAGS, IdempotencyRecord, Priority, Status, Task, normalize_tags

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "fields",
    [
        {"status": Status.COMPLETED, "completed": False},
        {"status": Status.TODO, "completed": True, "completed_at": timezone.now()},
        {"status": Status.COMPLETED, "completed": True, "completed_at": None},
        {"status": Status.TODO, "completed": False, "completed_at": timezone.now()},
        {"version": 0},
    ],
)
def test_database_rejects_broken_invariants(user: Any, fields: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(owner=user, title="x", **fields)


def test_database_accepts_a_consistent_completed_task(user: Any) -> None:
    Task.objects.create(owner=user, title="x", status=Status.COMPLETED, completed=True, completed_at=timezone.now())


def test_idempotency_key_is_unique_per_user(user: Any, other_user: Any) -> None:
    IdempotencyRecord.objects.create(user=user, key="k", fingerprint="f")
    IdempotencyRecord.objects.create(user=other_user, key="k", fingerprint="f")
    with pytest.raises(IntegrityError), transaction.atomic():
        IdempotencyRecord.objects.create(user=user, key="k", fingerprint="g")


def test_priority_ranks_high_over_medium_over_low() -> None:
    assert Priority.HIGH > Priority.MEDIUM > Priority.LOW
    assert [Priority.from_name(name) for name in ("low", "medium", "high")] == [
        Priority.LOW,
        Priority.MEDIUM,
        Priority.HIGH,
    ]
    with pytest.raises(ValueError):
        Priority.from_name("High")


def test_normalize_tags() -> None:
    assert normalize_tags([" A ", "b", "a", "B "]) == ["a", "b"]
    assert normalize_tags([]) == []
    with pytest.raises(ValidationError):
        normalize_tags([f"t{n}" for n in range(MAX_TAGS + 1)])
