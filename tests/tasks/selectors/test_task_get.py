"""task_get: visibility, malformed ids, and the read-through cache."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.types import Actor
from tasks.models import Task
from tasks.selectors import TaskNotFound, task_get
from tasks.services import task_create, task_delete
from tests.tasks.helpers import columns, run_concurrently, stored

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(actor: Actor) -> Task:
    return task_create(actor=actor, data={"title": "Mine", "tags": ["a"], "priority": "high"})


def test_owner_gets_own_task(actor: Actor, task: Task) -> None:
    got = task_get(actor=actor, task_id=task.pk)
    assert columns(got) == stored(task)


def test_id_is_the_lower_case_hyphenated_string_or_a_uuid(actor: Actor, task: Task) -> None:
    assert task_get(actor=actor, task_id=str(task.pk)).pk == task.pk
    assert task_get(actor=actor, task_id=task.pk).pk == task.pk


@pytest.mark.parametrize(
    "spell",
    [str.upper, lambda text: text.replace("-", ""), lambda text: "{" + text + "}", lambda text: "urn:uuid:" + text],
    ids=["upper case", "no hyphens", "braces", "urn"],
)
def test_another_spelling_of_the_id_is_not_found(actor: Actor, task: Task, spell: Callable[[str], str]) -> None:
    """The same outcome as REST, whose path takes only the one spelling (docs/domain.md)."""
    with pytest.raises(TaskNotFound):
        task_get(actor=actor, task_id=spell(str(task.pk)))


def test_other_users_task_is_not_found(other_actor: Actor, task: Task) -> None:
    with pytest.raises(TaskNotFound) as info:
        task_get(actor=other_actor, task_id=task.pk)
    assert info.value.code == "not_found"


def test_other_users_task_is_not_found_when_it_is_cached(actor: Actor, other_actor: Actor, task: Task) -> None:
    task_get(actor=actor, task_id=task.pk)  # the owner's read fills the cache
    with pytest.raises(TaskNotFound):
        task_get(actor=other_actor, task_id=task.pk)
    with pytest.raises(TaskNotFound):
        task_get(actor=other_actor, task_id=task.pk)


def test_manager_sees_every_task(manager_actor: Actor, task: Task, make_task: Callable[..., Task]) -> None:
    foreign = make_task()
    assert task_get(actor=manager_actor, task_id=task.pk).pk == task.pk
    assert task_get(actor=manager_actor, task_id=foreign.pk).pk == foreign.pk


def test_staff_sees_every_task(user: Any, other_user: Any, make_task: Callable[..., Task]) -> None:
    foreign = make_task(owner=other_user)
    staff = Actor(id=user.pk, username=user.username, roles=frozenset(), is_staff=True)
    assert task_get(actor=staff, task_id=foreign.pk).pk == foreign.pk


def test_viewer_and_read_only_actor_read_their_own(
    viewer: Any, viewer_actor: Actor, read_only_actor: Actor, task: Task, make_task: Callable[..., Task]
) -> None:
    own = make_task(owner=viewer)
    assert task_get(actor=viewer_actor, task_id=own.pk).pk == own.pk
    assert task_get(actor=read_only_actor, task_id=task.pk).pk == task.pk
    with pytest.raises(TaskNotFound):
        task_get(actor=viewer_actor, task_id=task.pk)


@pytest.mark.parametrize(
    "task_id", ["", "abc", "123", "00000000-0000-0000-0000", "../etc/passwd", "g" * 32, "' OR 1=1 --"]
)
def test_malformed_id_is_not_found(actor: Actor, task_id: str, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0), pytest.raises(TaskNotFound):
        task_get(actor=actor, task_id=task_id)


def test_unknown_id_is_not_found_and_remembered(actor: Actor, django_assert_num_queries: Any) -> None:
    missing = uuid.uuid4()
    with django_assert_num_queries(1), pytest.raises(TaskNotFound):
        task_get(actor=actor, task_id=missing)
    with django_assert_num_queries(0), pytest.raises(TaskNotFound):
        task_get(actor=actor, task_id=missing)


def test_cache_hit_costs_no_query(actor: Actor, task: Task, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        first = task_get(actor=actor, task_id=task.pk)
    with django_assert_num_queries(0):
        second = task_get(actor=actor, task_id=task.pk)
    assert columns(second) == columns(first) == stored(task)


def test_cached_task_is_a_fresh_object_each_time(actor: Actor, task: Task) -> None:
    first = task_get(actor=actor, task_id=task.pk)
    first.title = "scribbled on"
    assert task_get(actor=actor, task_id=task.pk).title == "Mine"


def test_tombstone_after_delete(
    actor: Actor,
    manager_actor: Actor,
    task: Task,
    django_capture_on_commit_callbacks: Any,
    django_assert_num_queries: Any,
) -> None:
    task_get(actor=actor, task_id=task.pk)
    with django_capture_on_commit_callbacks(execute=True):
        task_delete(actor=actor, task_id=task.pk)
    for who in (actor, manager_actor):
        with django_assert_num_queries(0), pytest.raises(TaskNotFound):
            task_get(actor=who, task_id=task.pk)


def test_tasks_of_two_owners_are_cached_apart(
    actor: Actor, other_actor: Actor, task: Task, django_assert_num_queries: Any
) -> None:
    theirs = task_create(actor=other_actor, data={"title": "Theirs"})
    assert task_get(actor=actor, task_id=task.pk).title == "Mine"
    assert task_get(actor=other_actor, task_id=theirs.pk).title == "Theirs"
    with django_assert_num_queries(0):
        assert task_get(actor=actor, task_id=task.pk).title == "Mine"
        assert task_get(actor=other_actor, task_id=theirs.pk).title == "Theirs"


def test_cache_disabled_always_reads_the_database(
    actor: Actor, task: Task, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.CACHE_ENABLED = False
    for _ in range(3):
        with django_assert_num_queries(1):
            assert task_get(actor=actor, task_id=task.pk).pk == task.pk
    with django_assert_num_queries(1), pytest.raises(TaskNotFound):
        task_get(actor=actor, task_id=uuid.uuid4())


@pytest.mark.django_db(transaction=True)
def test_many_readers_of_a_missing_entry_cost_one_query(actor: Actor) -> None:
    """Stampede protection on the real read path: threads missing the same task at once share one load."""
    task = task_create(actor=actor, data={"title": "Popular"})
    cache.clear()

    def read(_: int) -> tuple[Any, int]:
        with CaptureQueriesContext(connection) as queries:
            got = task_get(actor=actor, task_id=task.pk)
        return got.pk, len(queries)

    results = run_concurrently(6, read)
    assert all(isinstance(r, tuple) for r in results), results
    assert {pk for pk, _ in results} == {task.pk}
    assert sum(count for _, count in results) == 1
