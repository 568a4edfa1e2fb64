"""Visibility: an editor sees only their own tasks through every field; managers see everybody's
in `tasks` but only their own in `me.tasks`; and TaskType.get_queryset, the safety net for
QuerySet-resolved (nested, optimized) fields, scopes tasks the same way."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
import strawberry_django
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client, RequestFactory
from strawberry.schema.config import StrawberryConfig
from strawberry_django.optimizer import DjangoOptimizerExtension

from api_graphql.context import Context
from api_graphql.scalars import DATETIME_SCALAR, DateTime
from api_graphql.types import TaskType
from api_graphql.views import identify
from core.errors import NotAuthenticated
from tasks.models import Task
from tests.api_graphql.conftest import bearer, body_of, data_of, gql, only_error

pytestmark = pytest.mark.django_db

BY_ID = "query($id: ID!) { task(id: $id) { id title } }"
LISTS = {
    "tasks": "{ tasks(first: 100) { edges { node { id ownerId } } } }",
    "searchTasks": '{ searchTasks(query: "shared words", first: 100) { edges { node { id ownerId } } } }',
    "me.tasks": "{ me { tasks(first: 100) { edges { node { id ownerId } } } } }",
    "tasks(filters)": '{ tasks(filters: {tag: "common", search: "shared"}) { edges { node { id ownerId } } } }',
}

# The task type's DateTime scalar, as the real schema configures it (api_graphql/schema.py).
_CONFIG = StrawberryConfig(scalar_map={DateTime: DATETIME_SCALAR})


@pytest.fixture
def world(user: Any, other_user: Any, manager: Any, make_task: Any) -> dict[str, list[Any]]:
    """Two tasks each for two editors and a manager, all matching the same search and tag."""
    fields = {"description": "some shared words", "tags": ["common"]}
    return {
        "user": [make_task(owner=user, **fields) for _ in range(2)],
        "other": [make_task(owner=other_user, **fields) for _ in range(2)],
        "manager": [make_task(owner=manager, **fields) for _ in range(2)],
    }


def _ids(data: Any, field: str) -> set[str]:
    for part in field.split("(")[0].split("."):
        data = data[part]
    return {edge["node"]["id"] for edge in data["edges"]}


@pytest.mark.parametrize("field", LISTS)
def test_an_editor_lists_only_own_tasks(client: Client, user: Any, world: dict, field: str) -> None:
    data = data_of(gql(client, LISTS[field], **bearer(user)))

    assert _ids(data, field) == {str(t.pk) for t in world["user"]}


@pytest.mark.parametrize("field", LISTS)
def test_a_viewer_lists_only_own_tasks(client: Client, viewer: Any, make_task: Any, world: dict, field: str) -> None:
    own = make_task(owner=viewer, description="some shared words", tags=["common"])

    data = data_of(gql(client, LISTS[field], **bearer(viewer)))

    assert _ids(data, field) == {str(own.pk)}


@pytest.mark.parametrize(("field", "sees"), [("tasks", "all"), ("searchTasks", "all"), ("me.tasks", "own")])
def test_a_manager_sees_all_except_in_my_tasks(
    client: Client, manager: Any, world: dict, field: str, sees: str
) -> None:
    data = data_of(gql(client, LISTS[field], **bearer(manager)))

    everyone = {str(t.pk) for tasks in world.values() for t in tasks}
    assert _ids(data, field) == (everyone if sees == "all" else {str(t.pk) for t in world["manager"]})


def test_an_editor_never_reads_another_users_task_by_id(client: Client, user: Any, world: dict) -> None:
    for task in world["other"] + world["manager"]:
        response = gql(client, BY_ID, {"id": str(task.pk)}, **bearer(user))
        only_error(response, "NOT_FOUND")
        assert response.json()["data"] == {"task": None}
        assert task.title not in response.content.decode()


def test_a_cached_task_does_not_cross_users(client: Client, user: Any, other_user: Any, make_task: Any) -> None:
    task = make_task(owner=other_user, title="Cached for its owner")
    variables = {"id": str(task.pk)}
    assert data_of(gql(client, BY_ID, variables, **bearer(other_user)))["task"]["title"] == "Cached for its owner"

    only_error(gql(client, BY_ID, variables, **bearer(user)), "NOT_FOUND")


def test_a_manager_reads_any_task_by_id(client: Client, manager: Any, world: dict) -> None:
    for task in world["user"] + world["other"]:
        assert data_of(gql(client, BY_ID, {"id": str(task.pk)}, **bearer(manager)))["task"]["id"] == str(task.pk)


def test_cached_list_pages_do_not_cross_users(client: Client, user: Any, other_user: Any, world: dict) -> None:
    document = LISTS["tasks"]
    first = _ids(data_of(gql(client, document, **bearer(user))), "tasks")

    second = _ids(data_of(gql(client, document, **bearer(other_user))), "tasks")

    assert first == {str(t.pk) for t in world["user"]}
    assert second == {str(t.pk) for t in world["other"]}


# -- TaskType.get_queryset -------------------------------------------------------------------------------------------
# Our resolvers return tasks from the selectors, so get_queryset is the safety net of any field that
# resolves a QuerySet of tasks through strawberry_django. The probe schema below has two such fields
# (a root list and a nested relation, which DjangoOptimizerExtension turns into one prefetch) and
# runs with a Context built exactly as api_graphql.views.GraphQLView builds it.


@strawberry_django.type(get_user_model(), name="ProbeOwner")
class ProbeOwner:
    id: strawberry.ID
    username: str
    tasks: list[TaskType]


@strawberry.type(name="ProbeQuery")
class ProbeQuery:
    all_tasks: list[TaskType] = strawberry_django.field()
    owners: list[ProbeOwner] = strawberry_django.field()


def view_context(headers: dict[str, str]) -> Context:
    request = RequestFactory().post("/graphql/", **headers)
    actor, auth_error = identify(request)
    return Context(request=request, response=HttpResponse(), actor=actor, auth_error=auth_error)


@pytest.fixture(params=[True, False], ids=["optimized", "unoptimized"])
def probe(request: pytest.FixtureRequest) -> strawberry.Schema:
    return strawberry.Schema(
        query=ProbeQuery, extensions=[DjangoOptimizerExtension] if request.param else [], config=_CONFIG
    )


def test_get_queryset_scopes_a_root_list(probe: strawberry.Schema, user: Any, manager: Any, world: dict) -> None:
    mine = probe.execute_sync("{ allTasks { id } }", context_value=view_context(bearer(user)))
    everyone = probe.execute_sync("{ allTasks { id } }", context_value=view_context(bearer(manager)))

    assert mine.errors is None and everyone.errors is None
    assert {t["id"] for t in mine.data["allTasks"]} == {str(t.pk) for t in world["user"]}
    assert len(everyone.data["allTasks"]) == 6


def test_get_queryset_scopes_nested_and_prefetched_tasks(probe: strawberry.Schema, user: Any, world: dict) -> None:
    context = view_context(bearer(user))

    result = probe.execute_sync("{ owners { id tasks { id ownerId } } }", context_value=context)

    assert result.errors is None
    nested = [task for owner in result.data["owners"] for task in owner["tasks"]]
    assert {t["id"] for t in nested} == {str(t.pk) for t in world["user"]}
    assert {t["ownerId"] for t in nested} == {user.pk}


def test_the_optimizer_prefetches_nested_tasks_in_one_query(
    user: Any, world: dict, django_assert_num_queries: Any
) -> None:
    probe = strawberry.Schema(query=ProbeQuery, extensions=[DjangoOptimizerExtension], config=_CONFIG)
    context = view_context(bearer(user))  # no query: the actor comes from the token's claims

    with django_assert_num_queries(2):  # the owners, then every owner's visible tasks at once
        result = probe.execute_sync("{ owners { id tasks { id } } }", context_value=context)

    assert result.errors is None


def test_get_queryset_refuses_anonymous_callers(probe: strawberry.Schema, world: dict) -> None:
    result = probe.execute_sync("{ allTasks { id } }", context_value=view_context({}))

    assert result.data is None
    assert [type(error.original_error) for error in result.errors] == [NotAuthenticated]


def test_get_queryset_called_directly(user: Any, manager: Any, world: dict) -> None:
    everything = Task.objects.all()

    mine = TaskType.get_queryset(everything, SimpleNamespace(context=view_context(bearer(user))))
    all_of_them = TaskType.get_queryset(everything, SimpleNamespace(context=view_context(bearer(manager))))
    narrowed = TaskType.get_queryset(
        Task.objects.filter(pk=world["other"][0].pk), SimpleNamespace(context=view_context(bearer(user)))
    )

    assert set(mine) == set(world["user"])
    assert all_of_them.count() == 6
    assert not narrowed.exists()  # the caller's own filter is kept, and the scope added to it
    with pytest.raises(NotAuthenticated):
        TaskType.get_queryset(everything, SimpleNamespace(context=view_context({})))


def test_get_queryset_with_a_bad_credential_raises_it(world: dict) -> None:
    context = view_context({"HTTP_AUTHORIZATION": "Bearer nonsense"})

    with pytest.raises(NotAuthenticated):
        TaskType.get_queryset(Task.objects.all(), SimpleNamespace(context=context))


def test_the_schema_exposes_no_path_around_the_selectors(client: Client, user: Any) -> None:
    # No field of the real schema reaches a task other than through task/tasks/searchTasks/me.tasks:
    # the Task type has no relation to follow, and the owner is only an id.
    body = body_of(gql(client, "{ tasks { edges { node { owner { id } } } } }", **bearer(user)))

    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
