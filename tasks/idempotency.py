"""Idempotency-Key records of task creation: claim a key, store the first result, replay it.

A record is inserted in its own transaction when a request claims its key, so a concurrent duplicate
sees it at once; the created task's snapshot is written into it in the same transaction as the task.
The services in tasks.services decide what a claimed, finished or foreign record means.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.db import retry_transient
from core.encoding import canonical_json
from tasks.models import IdempotencyRecord, Task

MAX_KEY_LENGTH = 255

_FIELD_OBJECTS = tuple(Task._meta.concrete_fields)


def fingerprint(owner_id: int, values: dict[str, Any]) -> str:
    """What a replay must match: the owner and the checked input, canonically spelled and hashed."""
    return hashlib.sha256(canonical_json({"owner": owner_id, "data": values}).encode()).hexdigest()


def task_to_snapshot(task: Task) -> dict[str, Any]:
    """A JSON-safe copy of the task's columns (for storage in the record's JSONField)."""
    columns = {field.attname: getattr(task, field.attname) for field in _FIELD_OBJECTS}
    snapshot: dict[str, Any] = json.loads(canonical_json(columns))
    return snapshot


def task_from_snapshot(snapshot: dict[str, Any]) -> Task:
    """The task exactly as the first request created it. A column the snapshot lacks (it was stored
    before the column existed) takes the field's default."""
    values = [
        field.to_python(snapshot[field.attname]) if field.attname in snapshot else field.get_default()
        for field in _FIELD_OBJECTS
    ]
    return Task.from_db("default", [field.attname for field in _FIELD_OBJECTS], values)


@retry_transient
def claim(user_id: int, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Insert the record of a key, or return the existing one. True when this call owns the key.

    A record older than IDEMPOTENCY_TTL, or still in flight after IDEMPOTENCY_IN_FLIGHT_TIMEOUT
    (its request died), is taken over.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(user_id=user_id, key=key, fingerprint=fingerprint), True
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.get(user_id=user_id, key=key)
    expired = record.created_at < now - timedelta(seconds=settings.IDEMPOTENCY_TTL)
    abandoned = record.response is None and record.created_at < now - timedelta(
        seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT
    )
    if expired or abandoned:
        # Conditional on the old row, so of two concurrent takers only one wins.
        taken = IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).update(
            fingerprint=fingerprint, response=None, created_at=now
        )
        if taken:
            record.refresh_from_db()
            return record, True
        record.refresh_from_db()
    return record, False


def release(record: IdempotencyRecord) -> None:
    """Give back a key whose request failed before it finished: the client may retry it, fixed or not."""
    IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True).delete()


def finish(record: IdempotencyRecord, task: Task) -> None:
    """Store the created task as the key's result; call in the transaction that inserted it."""
    record.response = task_to_snapshot(task)
    record.save(update_fields=["response"])
