"""Idempotency-Key records of task creation: claim a key, store the first result, replay it.

A key is claimed in the transaction that creates the task, and the created task's snapshot is written
into the record in that same transaction: the record commits finished, with its task, or not at all.
A create that failed for any reason (a database restart included) leaves no claim behind, so its
retry is never refused as "in flight". The services in tasks.services decide what a claimed,
finished or foreign record means.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.encoding import canonical_json
from tasks.models import IdempotencyRecord, Task

MAX_KEY_LENGTH = 255

_FIELD_OBJECTS = tuple(Task._meta.concrete_fields)


def fingerprint(owner_id: int, values: dict[str, Any]) -> str:
    """What a replay must match: the owner and the input (tasks.services: the fields sent, as the domain
    normalized them), canonically spelled and hashed."""
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


def claim(user_id: int, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Insert the record of a key, or return the existing one, locked. True when this call owns the key.

    Call inside the transaction that creates the task. A concurrent duplicate's insert waits until
    that transaction ends (PostgreSQL: on the unique index; SQLite: IMMEDIATE transactions hold the
    write lock), then finds the finished record and replays it, or, if the first one rolled back,
    inserts its own: never two tasks, and never a claim outliving a failed create.

    A record older than IDEMPOTENCY_TTL is taken over. So is one without a response (claimed in its
    own transaction by a release before this one) older than IDEMPOTENCY_IN_FLIGHT_TIMEOUT: its
    request died.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("claim() belongs in the transaction that creates the task")
    now = timezone.now()
    try:
        with transaction.atomic():  # a savepoint: a duplicate key must not end the caller's transaction
            return IdempotencyRecord.objects.create(user_id=user_id, key=key, fingerprint=fingerprint), True
    except IntegrityError:
        pass
    # Locked until the caller's transaction ends, so of two concurrent takers only one wins; the other
    # then sees the winner's finished record.
    record = IdempotencyRecord.objects.select_for_update().get(user_id=user_id, key=key)
    expired = record.created_at < now - timedelta(seconds=settings.IDEMPOTENCY_TTL)
    abandoned = record.response is None and record.created_at < now - timedelta(
        seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT
    )
    if expired or abandoned:
        record.fingerprint, record.response, record.created_at = fingerprint, None, now
        record.save(update_fields=["fingerprint", "response", "created_at"])
        return record, True
    return record, False


def finish(record: IdempotencyRecord, task: Task) -> None:
    """Store the created task as the key's result; call in the transaction that claimed the key."""
    record.response = task_to_snapshot(task)
    record.save(update_fields=["response"])
