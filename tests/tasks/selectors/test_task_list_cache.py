"""task_list and the cache: pages served without a query, invalidated per owner on commit, one query a miss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.types import Actor
from tasks.models import Task
from tasks.selectors import task_list, task_search
from tasks.services import task_create, task_delete, task_update

pytestmark = pytest.mark.django_db


def pks(page: Any) -> list[Any]:
    return [task.pk for task in page.items]


@pytest.fixture
def mine(actor: Actor) -> list[Task]:
    return [task_create(actor=actor, data={"title": f"Mine {n}", "tags": ["home"]}) for n in range(3)]


def test_second_identical_call_is_served_from_the_cache(
    actor: Actor, mine: list[Task], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        first = task_list(actor=actor, filters={"tag": "home"}, ordering="created_at", limit=2)
    with django_assert_num_queries(0):
        second = task_list(actor=actor, filters={"tag": "home"}, ordering="created_at", limit=2)
    assert pks(second) == pks(first) == [t.pk for t in mine[:2]]
    assert second.next_cursor == first.next_cursor


def test_next_page_is_cached_too(actor: Actor, mine: list[Task], django_assert_num_queries: Any) -> None:
    first = task_list(actor=actor, ordering="created_at", limit=2)
    with django_assert_num_queries(1):
        second = task_list(actor=actor, ordering="created_at", limit=2, cursor=first.next_cursor)
    with django_assert_num_queries(0):
        again = task_list(actor=actor, ordering="created_at", limit=2, cursor=first.next_cursor)
    assert pks(again) == pks(second) == [mine[2].pk]


def test_different_parameters_are_different_pages(
    actor: Actor, mine: list[Task], django_assert_num_queries: Any
) -> None:
    task_list(actor=actor, ordering="created_at")
    for kwargs in (
        {"ordering": "-created_at"},
        {"ordering": "created_at", "limit": 2},
        {"ordering": "created_at", "filters": {"tag": "work"}},
        {"ordering": "created_at", "filters": {"status": "todo"}},
    ):
        with django_assert_num_queries(1):
            task_list(actor=actor, **kwargs)
    assert pks(task_list(actor=actor, ordering="created_at", filters={"tag": "work"})) == []


def test_create_of_the_owner_shows_in_the_next_list(
    actor: Actor, mine: list[Task], django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    assert len(task_list(actor=actor).items) == 3
    with django_capture_on_commit_callbacks(execute=True):
        new = task_create(actor=actor, data={"title": "New one"})
    with django_assert_num_queries(1):
        page = task_list(actor=actor)
    assert pks(page) == [new.pk, *[t.pk for t in reversed(mine)]]


def test_update_of_the_owner_shows_in_the_next_list(
    actor: Actor, mine: list[Task], django_capture_on_commit_callbacks: Any
) -> None:
    assert {t.title for t in task_list(actor=actor, filters={"search": "renamed"}).items} == set()
    task_list(actor=actor)
    with django_capture_on_commit_callbacks(execute=True):
        task_update(actor=actor, task_id=mine[0].pk, changes={"title": "Renamed", "tags": []})
    titles = {t.pk: (t.title, t.version) for t in task_list(actor=actor).items}
    assert titles[mine[0].pk] == ("Renamed", 2)
    assert [t.pk for t in task_list(actor=actor, filters={"search": "renamed"}).items] == [mine[0].pk]
    assert mine[0].pk not in pks(task_list(actor=actor, filters={"tag": "home"}))


def test_delete_of_the_owner_shows_in_the_next_list(
    actor: Actor, mine: list[Task], django_capture_on_commit_callbacks: Any
) -> None:
    task_list(actor=actor)
    with django_capture_on_commit_callbacks(execute=True):
        task_delete(actor=actor, task_id=mine[1].pk)
    assert pks(task_list(actor=actor)) == [mine[2].pk, mine[0].pk]


def test_manager_write_invalidates_the_owners_pages(
    actor: Actor, manager_actor: Actor, mine: list[Task], django_capture_on_commit_callbacks: Any
) -> None:
    task_list(actor=actor)
    with django_capture_on_commit_callbacks(execute=True):
        task_update(actor=manager_actor, task_id=mine[0].pk, changes={"title": "By the manager"})
    assert "By the manager" in {t.title for t in task_list(actor=actor).items}


def test_write_of_another_owner_keeps_a_users_pages_correct_and_cached(
    actor: Actor,
    other_actor: Actor,
    mine: list[Task],
    django_capture_on_commit_callbacks: Any,
    django_assert_num_queries: Any,
) -> None:
    before = pks(task_list(actor=actor))
    with django_capture_on_commit_callbacks(execute=True):
        theirs = task_create(actor=other_actor, data={"title": "Theirs", "tags": ["home"]})
        task_update(actor=other_actor, task_id=theirs.pk, changes={"title": "Theirs 2"})
    with django_assert_num_queries(0):
        after = pks(task_list(actor=actor))
    assert after == before
    assert theirs.pk not in after
    assert pks(task_list(actor=other_actor)) == [theirs.pk]


def test_managers_view_of_everything_is_invalidated_by_any_owner(
    actor: Actor,
    other_actor: Actor,
    manager_actor: Actor,
    mine: list[Task],
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert len(task_list(actor=manager_actor).items) == 3
    with django_capture_on_commit_callbacks(execute=True):
        theirs = task_create(actor=other_actor, data={"title": "Theirs"})
    assert theirs.pk in pks(task_list(actor=manager_actor))
    assert theirs.pk not in pks(task_list(actor=manager_actor, mine=True))
    with django_capture_on_commit_callbacks(execute=True):
        own = task_create(actor=manager_actor, data={"title": "Manager's"})
    assert pks(task_list(actor=manager_actor, mine=True)) == [own.pk]
    assert len(task_list(actor=manager_actor).items) == 5


def test_pages_are_never_shared_between_users(
    actor: Actor, other_actor: Actor, mine: list[Task], django_assert_num_queries: Any
) -> None:
    task_list(actor=actor)
    with django_assert_num_queries(1):
        assert pks(task_list(actor=other_actor)) == []


def test_write_before_commit_does_not_change_the_cached_page(
    actor: Actor, mine: list[Task], django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    """Invalidation happens on commit; until then the cached page still stands."""
    task_list(actor=actor)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        task_create(actor=actor, data={"title": "Not committed"})
        with django_assert_num_queries(0):
            assert len(task_list(actor=actor).items) == 3
    assert len(callbacks) == 2  # the cache refresh and the event (tasks.events)


@pytest.mark.parametrize("limit", [1, 5, 50, 100])
def test_a_cache_miss_costs_one_query_whatever_the_page_size(
    actor: Actor, user: Any, make_task: Callable[..., Task], django_assert_num_queries: Any, limit: int
) -> None:
    make_task.create_batch(120, owner=user)
    first = None
    for ordering in ("-created_at", "due_date", "-priority"):
        with django_assert_num_queries(1):
            first = task_list(actor=actor, ordering=ordering, limit=limit, filters={"status": "todo"})
        assert len(first.items) == limit
        with django_assert_num_queries(1):
            task_list(actor=actor, ordering=ordering, limit=limit, cursor=first.next_cursor)


def test_a_managers_cache_miss_costs_one_query(
    manager_actor: Actor, make_task: Callable[..., Task], django_assert_num_queries: Any
) -> None:
    make_task.create_batch(30)
    with django_assert_num_queries(1):
        assert len(task_list(actor=manager_actor, limit=25).items) == 25


def test_search_pages_are_cached_and_invalidated(
    actor: Actor, mine: list[Task], django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    assert len(task_search(actor=actor, query="mine").items) == 3
    with django_assert_num_queries(0):
        assert len(task_search(actor=actor, query="mine").items) == 3
    with django_capture_on_commit_callbacks(execute=True):
        task_create(actor=actor, data={"title": "Mine too"})
    assert len(task_search(actor=actor, query="mine").items) == 4


def test_with_the_cache_disabled_every_list_reads_the_database(
    actor: Actor,
    mine: list[Task],
    settings: Any,
    django_assert_num_queries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CACHE_ENABLED = False
    for _ in range(2):
        with django_assert_num_queries(1):
            assert pks(task_list(actor=actor, ordering="created_at")) == [t.pk for t in mine]
    with django_capture_on_commit_callbacks(execute=True):
        new = task_create(actor=actor, data={"title": "new"})
        task_update(actor=actor, task_id=mine[0].pk, changes={"title": "changed"})
        task_delete(actor=actor, task_id=mine[1].pk)
    with django_assert_num_queries(1):
        page = task_list(actor=actor, ordering="created_at")
    assert pks(page) == [mine[0].pk, mine[2].pk, new.pk]
    assert page.items[0].title == "changed"
