"""tasks.models: the database keeps the Task invariants even for writes that bypass the services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.models import (
    MAX_TAGS,
    NAIVE_MESSAGE,
    NOT_A_TIME_MESSAGE,
    NUL_MESSAGE,
    OUT_OF_RANGE_MESSAGE,
    IdempotencyRecord,
    Priority,
    Status,
    Task,
    normalize_tags,
    parse_aware_datetime,
)

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


# -- parse_aware_datetime: the one rule for every time a client sends ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-31T17:00:00Z", datetime(2030, 1, 31, 17, tzinfo=UTC)),
        ("2030-01-31T17:00:00+02:00", datetime(2030, 1, 31, 15, tzinfo=UTC)),
        # Offsets PostgreSQL cannot store (beyond ±15:59) arrive in UTC.
        ("2030-01-31T17:00:00+20:00", datetime(2030, 1, 30, 21, tzinfo=UTC)),
        ("2030-01-31T17:00:00-23:59", datetime(2030, 2, 1, 16, 59, tzinfo=UTC)),
        (datetime(2030, 1, 31, 17, tzinfo=timezone.get_fixed_timezone(60)), datetime(2030, 1, 31, 16, tzinfo=UTC)),
    ],
)
def test_parse_aware_datetime_gives_the_instant_in_utc(text: Any, expected: datetime) -> None:
    parsed = parse_aware_datetime(text)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2030-02-30T10:00:00Z", NOT_A_TIME_MESSAGE),
        ("0000-06-01T10:00:00Z", NOT_A_TIME_MESSAGE),
        ("2030-06-01T25:00:00Z", NOT_A_TIME_MESSAGE),
        ("2030-06-01T10:00:00+25:00", NOT_A_TIME_MESSAGE),
        ("next tuesday", NOT_A_TIME_MESSAGE),
        ("", NOT_A_TIME_MESSAGE),
        (17, NOT_A_TIME_MESSAGE),
        ("2030-06-01T10:00:00", NAIVE_MESSAGE),
        (datetime(2030, 6, 1), NAIVE_MESSAGE),  # noqa: DTZ001 - the point
        ("0001-01-01T00:00:00+05:00", OUT_OF_RANGE_MESSAGE),
        ("9999-12-31T23:00:00-05:00", OUT_OF_RANGE_MESSAGE),
    ],
)
def test_parse_aware_datetime_refuses_with_a_message(value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_aware_datetime(value)
    assert info.value.messages == [message]


@pytest.mark.parametrize("field", ["title", "description"])
def test_nul_characters_are_refused_in_text(user: Any, field: str) -> None:
    task = Task(owner=user, **{"title": "x", field: "a\x00b"})
    with pytest.raises(ValidationError) as info:
        task.full_clean()
    assert info.value.message_dict == {field: [NUL_MESSAGE]}


def test_nul_characters_are_refused_in_tags() -> None:
    with pytest.raises(ValidationError) as info:
        normalize_tags(["ok", "b\x00d"])
    assert info.value.messages == [NUL_MESSAGE]
