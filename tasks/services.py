"""Writes of tasks: create, update, delete. Every rule of a write lives here.

Each service checks the actor's role, validates, writes in one transaction (rerun on a transient
database error) and, once the transaction commits, refreshes the cache and publishes the change's
event (tasks.events).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.cache import safe_cache
from core.db import retry_transient
from core.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidInput,
    NotAuthenticated,
    PermissionDenied,
    StaleVersion,
)
from core.types import Actor
from observability.tracing import traced
from tasks import cache, events, idempotency
from tasks.models import Priority, Status, Task, parse_aware_datetime
from tasks.selectors import task_get_for_update

# The version(s) a conditional write expects: one (GraphQL, gRPC, a single If-Match tag), any of a
# set (an If-Match list: RFC 9110 §13.1.1, an empty set never matches), or None for any version.
ExpectedVersion = int | Set[int] | None

EDITABLE_FIELDS = frozenset({"title", "description", "priority", "status", "completed", "due_date", "tags"})
# Fields a write may change, directly or through the completed/status rule.
_TRACKED_FIELDS = (*sorted(EDITABLE_FIELDS), "completed_at")
_DEFAULTS: dict[str, Any] = {
    "description": "",
    "priority": Priority.MEDIUM,
    "status": Status.TODO,
    "completed": False,
    "due_date": None,
    "tags": [],
}


def _require_write(actor: Actor) -> None:
    if not actor.can_write:
        raise PermissionDenied("Your role or API key does not allow changing tasks.")


def _check_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """Reject fields that cannot be edited and turn priority names into Priority."""
    if extra := sorted(set(data) - EDITABLE_FIELDS):
        raise InvalidInput.for_fields({name: ["This field cannot be set."] for name in extra})
    values = dict(data)
    priority = values.get("priority")
    if isinstance(priority, str) and not isinstance(priority, Priority):
        try:
            values["priority"] = Priority.from_name(priority)
        except ValueError:
            raise InvalidInput.for_fields({"priority": ["Must be one of: low, medium, high."]}) from None
    for name in ("title", "description", "status"):
        if name in values and not isinstance(values[name], str):
            raise InvalidInput.for_fields({name: ["Must be a string."]})
    if "completed" in values and not isinstance(values["completed"], bool):
        raise InvalidInput.for_fields({"completed": ["Must be true or false."]})
    if values.get("due_date") is not None:
        try:
            values["due_date"] = parse_aware_datetime(values["due_date"])
        except ValidationError as exc:
            raise InvalidInput.for_fields({"due_date": list(exc.messages)}) from None
    return values


def _apply_completion(task: Task, changed: set[str]) -> None:
    """Keep `completed` equal to `status == completed`: setting either one sets the other."""
    if {"status", "completed"} <= changed:
        if (task.status == Status.COMPLETED) != task.completed:
            raise InvalidInput.for_fields({"completed": ["Contradicts the status."]})
    elif "completed" in changed:
        if task.completed:
            task.status = Status.COMPLETED
        elif task.status == Status.COMPLETED:
            task.status = Status.TODO
    elif "status" in changed:
        task.completed = task.status == Status.COMPLETED
    if task.completed and task.completed_at is None:
        task.completed_at = timezone.now()
    elif not task.completed:
        task.completed_at = None


def _validate(task: Task) -> None:
    # Uniqueness and CHECK constraints are left to the database: Django checks them with one query each.
    task.full_clean(validate_unique=False, validate_constraints=False)


@dataclass(frozen=True, slots=True)
class Creation:
    """What a create with an optional idempotency key gave: the task, and whether it is the stored
    result of an earlier request with the same key (a replay, which created nothing)."""

    task: Task
    replayed: bool = False


@traced("tasks.task_create")
def task_create(*, actor: Actor, data: Mapping[str, Any], owner_id: int | None = None) -> Task:
    """Create a task owned by the actor (or, for managers and staff, by `owner_id`).

    Raises PermissionDenied and InvalidInput. After commit: caches the task and orphans the owner's
    cached list pages.
    """
    owner, values = _check_create(actor, data, owner_id)
    return _create(actor, owner, values, key=None).task


@traced("tasks.task_create")
def task_create_idempotent(
    *, actor: Actor, data: Mapping[str, Any], idempotency_key: str | None, owner_id: int | None = None
) -> Creation:
    """task_create, made safe to retry by a client-chosen key (without a key: exactly task_create).

    The first call with a key creates; every replay within IDEMPOTENCY_TTL returns the task as first
    created, with `replayed` True, and creates nothing. The key is claimed in the transaction that
    creates the task (tasks.idempotency.claim): a request that fails for any reason leaves no claim,
    and a concurrent duplicate waits for the first to end, then replays it. Raises as task_create,
    and IdempotencyKeyReused (same key, other input) and IdempotencyKeyInFlight (the key was claimed
    by an unfinished request of an earlier release, which claimed keys in a transaction of their own).
    """
    owner, values = _check_create(actor, data, owner_id)
    if idempotency_key is None:
        return _create(actor, owner, values, key=None)
    if not 1 <= len(idempotency_key) <= idempotency.MAX_KEY_LENGTH or not idempotency_key.isprintable():
        raise InvalidInput.for_fields({"idempotency_key": ["Must be 1 to 255 printable characters."]})
    return _create(actor, owner, values, key=(actor.id, idempotency_key))


def _create(actor: Actor, owner_id: int, values: dict[str, Any], *, key: tuple[int, str] | None) -> Creation:
    """`_insert`, where an owner that does not exist is the actor's own user deleted while one of its
    credentials is still valid (an access token until it expires): unauthenticated, not a field error
    on `owner`, which no client sends."""
    try:
        return _insert(owner_id, values, key=key)
    except ValidationError as exc:
        if owner_id == actor.id and "owner" in getattr(exc, "error_dict", {}):
            raise NotAuthenticated("The user of these credentials no longer exists.") from None
        raise


def _check_create(actor: Actor, data: Mapping[str, Any], owner_id: int | None) -> tuple[int, dict[str, Any]]:
    """The owner of a new task and its checked fields; the checks every create makes first."""
    _require_write(actor)
    values = _check_fields(data)
    if "title" not in values:
        raise InvalidInput.for_fields({"title": ["This field is required."]})
    if owner_id is not None and owner_id != actor.id and not actor.sees_all:
        raise PermissionDenied("Only managers create tasks for other users.")
    return (owner_id if owner_id is not None else actor.id), values


@retry_transient
def _insert(owner_id: int, values: dict[str, Any], *, key: tuple[int, str] | None) -> Creation:
    """Insert the task in one transaction; with `key` (user id, key), claim the key in it and store the
    task as its result, or replay what the key holds.

    The input is validated before the key is looked at, so an invalid retry is invalid input, as the
    first request was, not a conflict. A replay must ask for the same fields with the same values as
    the domain normalizes them (a title trimmed, tags trimmed and lowercased, a time in UTC): REST's
    parser trims a title before the service sees it, GraphQL's and gRPC's do not."""
    with transaction.atomic():
        task = Task(owner_id=owner_id, **{**_DEFAULTS, **values})
        _apply_completion(task, set(values))
        _validate(task)
        record = None
        if key is not None:
            normalized = idempotency.fingerprint(owner_id, {name: getattr(task, name) for name in values})
            record, claimed = idempotency.claim(*key, normalized)
            if not claimed:
                # The fingerprint of the input as sent: what releases before this one stored, for a
                # key claimed before a rolling deploy and retried after it (IDEMPOTENCY_TTL).
                if record.fingerprint != normalized and record.fingerprint != idempotency.fingerprint(owner_id, values):
                    raise IdempotencyKeyReused()
                if record.response is None:
                    raise IdempotencyKeyInFlight()
                return Creation(idempotency.task_from_snapshot(record.response), replayed=True)
        task.save(force_insert=True)
        if record is not None:
            idempotency.finish(record, task)
        transaction.on_commit(lambda: cache.task_written(task))
        events.publish_on_commit(events.EventType.CREATED, task)
    return Creation(task)


def _check_version(task: Task, expected: ExpectedVersion) -> None:
    """StaleVersion unless `task` (locked by the caller) is at a version `expected` accepts."""
    if expected is None:
        return
    if task.version not in ({expected} if isinstance(expected, int) else expected):
        raise StaleVersion(current=task.version)


@traced("tasks.task_update")
@retry_transient
def task_update(
    *, actor: Actor, task_id: UUID | str, changes: Mapping[str, Any], expected_version: ExpectedVersion = None
) -> Task:
    """Change some editable fields of a visible task.

    With `expected_version`, the update applies only if the task is still at that version. A change
    that changes nothing keeps the version. Raises PermissionDenied, TaskNotFound, StaleVersion and
    InvalidInput. After commit: caches the new row and orphans the owner's cached list pages.
    """
    _require_write(actor)
    values = _check_fields(changes)
    with transaction.atomic():
        task = task_get_for_update(actor=actor, task_id=task_id)
        _check_version(task, expected_version)
        before = {name: getattr(task, name) for name in _TRACKED_FIELDS}
        for name, value in values.items():
            setattr(task, name, value)
        _apply_completion(task, set(values))
        _validate(task)
        dirty = [name for name in _TRACKED_FIELDS if getattr(task, name) != before[name]]
        if not dirty:
            return task
        task.version += 1
        task.save(update_fields=[*dirty, "version", "updated_at"])
        transaction.on_commit(lambda: cache.task_written(task))
        events.publish_on_commit(events.change_type(task, set(dirty)), task)
    return task


@traced("tasks.task_replace")
def task_replace(
    *, actor: Actor, task_id: UUID | str, data: Mapping[str, Any], expected_version: ExpectedVersion = None
) -> Task:
    """Replace every editable field (HTTP PUT): fields left out go back to their defaults.

    Raises as task_update; `title` is required.
    """
    if "title" not in data:
        raise InvalidInput.for_fields({"title": ["This field is required."]})
    changes = {**_DEFAULTS, **data}
    if "completed" not in data and "status" in data:
        changes.pop("completed")
    elif "status" not in data and "completed" in data:
        changes.pop("status")
    return task_update(actor=actor, task_id=task_id, changes=changes, expected_version=expected_version)


@traced("tasks.task_delete")
@retry_transient
def task_delete(*, actor: Actor, task_id: UUID | str, expected_version: ExpectedVersion = None) -> None:
    """Delete a visible task.

    With `expected_version`, the delete applies only if the task is still at that version: the
    version is compared under the row lock the delete holds, as task_update compares it. Raises
    PermissionDenied, TaskNotFound and StaleVersion. After commit: the cache answers "not found" for
    it and the owner's list pages are orphaned.
    """
    _require_write(actor)
    with transaction.atomic():
        task = task_get_for_update(actor=actor, task_id=task_id)
        _check_version(task, expected_version)
        pk, owner_id = task.pk, task.owner_id
        # The cache first, as for a create or an update: a subscriber that reads the task as soon as
        # its event arrives finds it gone.
        transaction.on_commit(lambda: cache.task_deleted(pk, owner_id))
        events.publish_on_commit(events.EventType.DELETED, task)  # the task's last state, before it goes
        task.delete()


def tasks_of_a_deleted_owner(sender: Any, instance: Any, **kwargs: Any) -> None:
    """`pre_delete` of the user model (tasks.apps): the database deletes a user's tasks with them,
    past task_delete. What task_delete does after its commit is done here for each of them: a
    `deleted` event with its last state, the cache answering "not found", the owner's and managers'
    list pages out of date."""
    owner_id = instance.pk
    tasks = list(Task.objects.filter(owner_id=owner_id).iterator())
    if tasks:  # the cache first, as in task_delete
        task_ids = [task.pk for task in tasks]
        transaction.on_commit(lambda: cache.tasks_deleted(task_ids, owner_id))
    for task in tasks:
        events.publish_on_commit(events.EventType.DELETED, task)


@traced("tasks.task_complete_many")
def task_complete_many(*, actor: Actor, task_ids: list[UUID]) -> None:
    """Mark several visible tasks completed (the admin's bulk action), each through task_update; the
    cache's copies are waited for once, after the last (core.cache.SafeCache.publishing)."""
    with safe_cache.publishing():
        for task_id in task_ids:
            task_update(actor=actor, task_id=task_id, changes={"completed": True})


def task_delete_many(*, actor: Actor, task_ids: list[UUID]) -> None:
    """Delete several visible tasks (the admin's bulk delete), each through task_delete, as
    task_complete_many updates them."""
    with safe_cache.publishing():
        for task_id in task_ids:
            task_delete(actor=actor, task_id=task_id)
