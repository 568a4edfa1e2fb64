"""task_create with an idempotency key (docs/api/rest.md, "Idempotency")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from core.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, PermissionDenied
from core.types import Actor
from tasks.models import IdempotencyRecord, Priority, Task
from tasks.services import Creation, task_create_idempotent, task_update
from tests.tasks.helpers import TASK_COLUMNS, columns, raises_invalid, run_concurrently, stored
from tests.tasks.test_postgresql import terminate_backend

pytestmark = pytest.mark.django_db

KEY = "3f1c7c8e-key"
DATA = {"title": "Pay rent", "priority": "high", "tags": ["Home"]}


def create(actor: Actor, data: dict[str, Any] = DATA, key: str = KEY, **kwargs: Any) -> Creation:
    return task_create_idempotent(actor=actor, data=data, idempotency_key=key, **kwargs)


def test_first_call_creates_and_records_the_result(actor: Actor, user: Any) -> None:
    created = create(actor)
    assert created.replayed is False
    assert Task.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.user_id, record.key) == (user.pk, KEY)
    assert record.response is not None
    assert record.response["id"] == str(created.task.pk)


def test_replay_returns_the_first_result_and_creates_nothing(
    actor: Actor, django_capture_on_commit_callbacks: Any
) -> None:
    first = create(actor).task
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = create(actor)

    assert again.replayed is True
    assert again.task.pk == first.pk
    assert (again.task.owner_id, again.task.title, again.task.priority, again.task.tags, again.task.version) == (
        first.owner_id,
        "Pay rent",
        Priority.HIGH,
        ["home"],
        1,
    )
    assert (again.task.status, again.task.completed, again.task.due_date, again.task.completed_at) == (
        "todo",
        False,
        None,
        None,
    )
    assert Task.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert callbacks == []


def test_replay_is_exactly_the_first_result(actor: Actor) -> None:
    """'A replay returns the first result': every column, timestamps to the microsecond included."""
    first = create(actor).task
    again = create(actor).task
    assert columns(again) == columns(first)
    assert columns(again) == stored(first)


def test_replay_returns_the_first_result_even_after_the_task_changed(actor: Actor) -> None:
    first = create(actor).task
    task_update(actor=actor, task_id=first.pk, changes={"title": "Paid"})
    again = create(actor).task
    assert (again.pk, again.title, again.version) == (first.pk, "Pay rent", 1)
    assert Task.objects.get().title == "Paid"


def test_many_replays_all_return_the_same_task(actor: Actor) -> None:
    first = create(actor).task
    ids = {create(actor).task.pk for _ in range(5)}
    assert ids == {first.pk}
    assert Task.objects.count() == 1


def test_equivalent_payload_is_a_replay(actor: Actor) -> None:
    """Priority by name or by member is the same input."""
    first = create(actor, {"title": "x", "priority": "high"}).task
    again = create(actor, {"title": "x", "priority": Priority.HIGH})
    assert again.replayed is True
    assert again.task.pk == first.pk


@pytest.mark.parametrize(
    "other",
    [
        {**DATA, "title": "Pay the rent"},
        {**DATA, "priority": "low"},
        {**DATA, "tags": ["work"]},
        {**DATA, "description": "now"},
        {"title": "Pay rent"},
    ],
)
def test_same_key_with_other_payload_is_rejected(actor: Actor, other: dict[str, Any]) -> None:
    first = create(actor).task
    with pytest.raises(IdempotencyKeyReused):
        create(actor, other)
    assert list(Task.objects.values_list("pk", flat=True)) == [first.pk]
    assert IdempotencyRecord.objects.get().response["id"] == str(first.pk)  # type: ignore[index]


def test_same_key_for_another_owner_is_rejected(manager_actor: Actor, other_user: Any) -> None:
    create(manager_actor, {"title": "x"})
    with pytest.raises(IdempotencyKeyReused):
        create(manager_actor, {"title": "x"}, owner_id=other_user.pk)
    assert Task.objects.count() == 1


def _simulate_in_flight(created_at_shift: timedelta = timedelta(0)) -> None:
    """Turn the finished record into one whose request has not committed its task (yet)."""
    Task.objects.all().delete()
    IdempotencyRecord.objects.update(response=None, created_at=timezone.now() - created_at_shift)


def test_in_flight_key_is_rejected(actor: Actor) -> None:
    create(actor)
    _simulate_in_flight()
    with pytest.raises(IdempotencyKeyInFlight):
        create(actor)
    assert not Task.objects.exists()
    assert IdempotencyRecord.objects.get().response is None


def test_in_flight_key_with_other_payload_is_reused(actor: Actor) -> None:
    create(actor)
    _simulate_in_flight()
    with pytest.raises(IdempotencyKeyReused):
        create(actor, {"title": "other"})


def test_abandoned_in_flight_key_is_taken_over(actor: Actor) -> None:
    create(actor)
    _simulate_in_flight(timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT + 5))
    created = create(actor)
    assert created.replayed is False
    assert list(Task.objects.values_list("pk", flat=True)) == [created.task.pk]
    assert IdempotencyRecord.objects.get().response["id"] == str(created.task.pk)  # type: ignore[index]


def test_expired_record_is_taken_over(actor: Actor) -> None:
    first = create(actor).task
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL + 60))

    second = create(actor)
    assert second.replayed is False
    assert second.task.pk != first.pk
    assert Task.objects.count() == 2
    record = IdempotencyRecord.objects.get()
    assert record.response["id"] == str(second.task.pk)  # type: ignore[index]
    assert record.created_at > timezone.now() - timedelta(seconds=60)

    third = create(actor)
    assert (third.task.pk, third.replayed) == (second.task.pk, True)


def test_expired_record_may_be_taken_over_with_other_payload(actor: Actor) -> None:
    create(actor)
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL + 60))
    task = create(actor, {"title": "Something else"}).task
    assert task.title == "Something else"
    assert Task.objects.count() == 2


def test_record_just_inside_the_ttl_is_still_replayed(actor: Actor) -> None:
    first = create(actor).task
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL - 60))
    again = create(actor)
    assert (again.task.pk, again.replayed) == (first.pk, True)
    assert Task.objects.count() == 1


def test_keys_are_per_user(actor: Actor, other_actor: Actor, user: Any, other_user: Any) -> None:
    mine = create(actor).task
    theirs = create(other_actor)
    assert mine.pk != theirs.task.pk
    assert (mine.owner_id, theirs.task.owner_id) == (user.pk, other_user.pk)
    assert theirs.replayed is False
    assert create(other_actor).task.pk == theirs.task.pk
    assert create(actor).task.pk == mine.pk
    assert IdempotencyRecord.objects.count() == 2


def test_failed_validation_frees_the_key(actor: Actor) -> None:
    with raises_invalid("title"):
        create(actor, {"title": "   "})
    assert not IdempotencyRecord.objects.exists()

    created = create(actor, {"title": "Fixed"})
    assert (created.task.title, created.replayed) == ("Fixed", False)
    assert Task.objects.count() == 1


def test_failed_validation_after_the_claim_frees_the_key(manager_actor: Actor) -> None:
    """The owner is checked only when the row is validated, after the key was claimed."""
    with raises_invalid("owner"):
        create(manager_actor, {"title": "x"}, owner_id=987_654_321)
    assert not IdempotencyRecord.objects.exists()
    assert create(manager_actor, {"title": "x"}).replayed is False


def test_rejected_fields_leave_no_record(actor: Actor) -> None:
    with raises_invalid("colour"):
        create(actor, {"title": "x", "colour": "red"})
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", "k" * 256, "line\nbreak", "tab\tkey", "\x00"])
def test_invalid_keys_are_rejected(actor: Actor, key: str) -> None:
    with raises_invalid("idempotency_key"):
        create(actor, key=key)
    assert not Task.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_longest_key_is_accepted(actor: Actor) -> None:
    key = "k" * 255
    first = create(actor, key=key).task
    assert create(actor, key=key).task.pk == first.pk


def test_viewer_with_a_key_is_denied_before_anything_is_recorded(viewer_actor: Actor) -> None:
    with pytest.raises(PermissionDenied):
        create(viewer_actor)
    assert not IdempotencyRecord.objects.exists()


def test_replay_snapshot_holds_every_column(actor: Actor) -> None:
    create(actor)
    assert set(IdempotencyRecord.objects.get().response) == set(TASK_COLUMNS)  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_create_exactly_one_task(actor: Actor) -> None:
    def call(_: int) -> Any:
        return task_create_idempotent(actor=actor, data=DATA, idempotency_key="concurrent")

    results = run_concurrently(6, call)

    unexpected = [r for r in results if not isinstance(r, Creation | IdempotencyKeyInFlight)]
    assert not unexpected, unexpected
    creations = [r for r in results if isinstance(r, Creation)]
    assert Task.objects.count() == 1
    created = Task.objects.get()
    assert {c.task.pk for c in creations} == {created.pk}
    assert sum(not c.replayed for c in creations) == 1
    record = IdempotencyRecord.objects.get()
    assert record.response["id"] == str(created.pk)  # type: ignore[index]
    # Once everything has settled, the key replays.
    again = task_create_idempotent(actor=actor, data=DATA, idempotency_key="concurrent")
    assert (again.task.pk, again.replayed) == (created.pk, True)


def test_a_snapshot_stored_before_a_column_existed_replays_with_its_default(actor: Actor) -> None:
    first = create(actor).task
    record = IdempotencyRecord.objects.get()
    record.response = {name: value for name, value in record.response.items() if name != "description"}  # type: ignore[union-attr]
    record.save()

    again = create(actor)
    assert (again.replayed, again.task.pk, again.task.description) == (True, first.pk, "")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_create_the_database_cut_off_does_not_block_its_retry(actor: Actor, settings: Any) -> None:
    """The database goes away after the key was claimed, before the task is written (a restart):
    the create fails, and nothing can be given back while the database is away. Its retry, once the
    database is back, creates the task instead of being refused as "in flight"."""
    settings.DATABASE_RETRY_WINDOW = 0.2
    settings_dict = connection.settings_dict
    saved = dict(settings_dict)
    cut: list[int] = []

    def cut_off_at_the_task_insert(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not cut and sql.startswith('INSERT INTO "tasks_task"'):
            cut.append(connection.connection.info.backend_pid)
            terminate_backend(cut[0])  # the server ends this session...
            settings_dict.update(HOST="127.0.0.1", PORT="1")  # ...and refuses new ones until it is back
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(cut_off_at_the_task_insert), pytest.raises(OperationalError):
            create(actor)
    finally:
        connection.close()
        settings_dict.clear()
        settings_dict.update(saved)
    assert cut, "the fault was not injected"

    created = create(actor)
    assert created.replayed is False
    assert list(Task.objects.values_list("pk", flat=True)) == [created.task.pk]
    assert IdempotencyRecord.objects.get().response["id"] == str(created.task.pk)  # type: ignore[index]
    assert create(actor).replayed is True
