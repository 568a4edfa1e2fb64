"""task_search: title and description, case-insensitive, scoped, paginated; an empty query is invalid."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidInput
from core.types import Actor
from tasks.models import Task
from tasks.selectors import task_list, task_search
from tasks.services import task_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks(actor: Actor, other_actor: Actor) -> dict[str, Task]:
    return {
        "title": task_create(actor=actor, data={"title": "Buy Oat Milk"}),
        "description": task_create(actor=actor, data={"title": "Shopping", "description": "eggs, MILK, bread"}),
        "none": task_create(actor=actor, data={"title": "Call mum", "description": "about dinner"}),
        "foreign": task_create(actor=other_actor, data={"title": "milk for them"}),
    }


def found(tasks: dict[str, Task], page: Any) -> set[str]:
    by_id = {task.pk: name for name, task in tasks.items()}
    return {by_id[task.pk] for task in page.items}


@pytest.mark.parametrize("query", ["milk", "MILK", "mIlK", " milk "])
def test_matches_title_and_description_case_insensitively(actor: Actor, tasks: dict[str, Task], query: str) -> None:
    assert found(tasks, task_search(actor=actor, query=query)) == {"title", "description"}


@pytest.mark.parametrize(("query", "expected"), [("oat milk", {"title"}), ("eggs,", {"description"}), ("x", set())])
def test_substrings(actor: Actor, tasks: dict[str, Task], query: str, expected: set[str]) -> None:
    assert found(tasks, task_search(actor=actor, query=query)) == expected


def test_percent_and_underscore_are_literal(actor: Actor, tasks: dict[str, Task]) -> None:
    special = task_create(actor=actor, data={"title": "100% done_ish"})
    assert [t.pk for t in task_search(actor=actor, query="0% d").items] == [special.pk]
    assert [t.pk for t in task_search(actor=actor, query="e_i").items] == [special.pk]
    assert [t.pk for t in task_search(actor=actor, query="%").items] == [special.pk]
    assert [t.pk for t in task_search(actor=actor, query="_").items] == [special.pk]


def test_other_users_tasks_are_not_found(other_actor: Actor, tasks: dict[str, Task]) -> None:
    assert found(tasks, task_search(actor=other_actor, query="milk")) == {"foreign"}


def test_manager_searches_everything(manager_actor: Actor, tasks: dict[str, Task]) -> None:
    assert found(tasks, task_search(actor=manager_actor, query="milk")) == {"title", "description", "foreign"}


@pytest.mark.parametrize("query", ["", " ", "\t\n"])
def test_blank_query_lists_every_visible_task(actor: Actor, tasks: dict[str, Task], query: str) -> None:
    # Every text contains the empty text: the same answer as the list with a blank search filter.
    assert found(tasks, task_search(actor=actor, query=query)) == found(tasks, task_list(actor=actor))


def test_paginates(actor: Actor) -> None:
    made = [task_create(actor=actor, data={"title": f"milk {n}"}) for n in range(5)]
    first = task_search(actor=actor, query="milk", limit=3)
    second = task_search(actor=actor, query="milk", limit=3, cursor=first.next_cursor)
    assert [t.pk for t in [*first.items, *second.items]] == [t.pk for t in reversed(made)]
    assert second.next_cursor is None


def test_limit_is_checked(actor: Actor) -> None:
    with pytest.raises(InvalidInput) as info:
        task_search(actor=actor, query="milk", limit=0)
    assert set(info.value.extra["fields"]) == {"limit"}
