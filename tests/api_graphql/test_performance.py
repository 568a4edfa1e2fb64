"""Speed: single-task reads come from the domain cache (no query on a hit), list fields run a fixed
number of queries whatever the page size, writes a fixed number, and repeated documents skip
parsing and validation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from api_graphql import schema as schema_module
from tasks.models import Task
from tests.api_graphql.conftest import TASK_FIELDS, bearer, codes_of, data_of, gql

pytestmark = pytest.mark.django_db

TASK = "query($id: ID!) { task(id: $id) {" + TASK_FIELDS + "} }"
LISTS = {
    "tasks": "query($first: Int) { tasks(first: $first) { edges { cursor node { %s } } pageInfo { endCursor } } }",
    "me.tasks": "query($first: Int) { me { tasks(first: $first) { edges { node { %s } } } } }",
    "searchTasks": 'query($first: Int) { searchTasks(query: "e", first: $first) { edges { node { %s } } } }',
}


def test_task_on_a_cache_hit_runs_no_query(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, django_assert_num_queries: Any
) -> None:
    task = make_task(owner=user)
    first = data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))

    with django_assert_num_queries(0):
        again = data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))

    assert again == first


def test_task_on_a_cache_miss_runs_one_query(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, django_assert_num_queries: Any
) -> None:
    task = make_task(owner=user)

    with django_assert_num_queries(1):
        data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))


def test_task_reads_come_from_the_domain_cache(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Cached")
    data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))
    # Behind the services' back (no write path does this): a read that went to the database would see it.
    Task.objects.filter(pk=task.pk).update(title="Changed behind the cache")

    assert data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))["task"]["title"] == "Cached"


def test_rest_and_graphql_share_the_task_cache(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, django_assert_num_queries: Any
) -> None:
    task = make_task(owner=user)
    assert client.get(f"/api/v1/tasks/{task.pk}", **as_user).status_code == 200

    with django_assert_num_queries(0):
        data_of(gql(client, TASK, {"id": str(task.pk)}, **as_user))


def test_an_unknown_id_is_cached_too(client: Client, as_user: dict[str, str], django_assert_num_queries: Any) -> None:
    task_id = str(uuid.uuid4())
    gql(client, TASK, {"id": task_id}, **as_user)

    with django_assert_num_queries(0):
        assert gql(client, TASK, {"id": task_id}, **as_user).json()["data"] == {"task": None}


@pytest.fixture
def many_tasks(user: Any, other_user: Any, make_task: Any) -> None:
    for owner in (user, other_user):
        for i in range(60):
            make_task(owner=owner, title=f"task {i}", description="some text")


@pytest.mark.parametrize("field", LISTS)
@pytest.mark.parametrize("who", ["editor", "manager"])
def test_lists_run_the_same_queries_whatever_the_page_size(
    client: Client,
    user: Any,
    manager: Any,
    many_tasks: None,
    field: str,
    who: str,
    django_assert_num_queries: Any,
) -> None:
    headers = bearer(user if who == "editor" else manager)
    document = LISTS[field] % TASK_FIELDS
    visible = {"editor": 60, "manager": 0 if field == "me.tasks" else 120}[who]
    for first in (5, 50, 100):
        cache.clear()  # a miss: the page is built from the database
        with django_assert_num_queries(1):  # one keyset query, whatever the page size
            data = data_of(gql(client, document, {"first": first}, **headers))
        connection = data["me"]["tasks"] if field == "me.tasks" else data[field]
        assert len(connection["edges"]) == min(first, visible)


@pytest.mark.parametrize("field", LISTS)
def test_a_cached_list_page_runs_no_query(
    client: Client, as_user: dict[str, str], many_tasks: None, field: str, django_assert_num_queries: Any
) -> None:
    document = LISTS[field] % "id title"
    first = data_of(gql(client, document, {"first": 20}, **as_user))

    with django_assert_num_queries(0):
        assert data_of(gql(client, document, {"first": 20}, **as_user)) == first


CREATE = "mutation($input: TaskCreateInput!, $key: String) { createTask(input: $input, idempotencyKey: $key) { %s } }"
SMALL = {"title": "small"}
LARGE = {
    "title": "large",
    "description": "d" * 5000,
    "priority": "HIGH",
    "status": "COMPLETED",
    "dueDate": "2030-01-01T00:00:00+00:00",
    "tags": [f"tag{i}" for i in range(20)],
}


@pytest.mark.parametrize("fields", [SMALL, LARGE], ids=["small", "large"])
def test_create_runs_a_fixed_number_of_queries(
    client: Client, as_user: dict[str, str], fields: dict, django_assert_num_queries: Any
) -> None:
    # The owner's existence check of full_clean, then the insert in its transaction (savepoint here).
    with django_assert_num_queries(4):
        data_of(gql(client, CREATE % TASK_FIELDS, {"input": fields}, **as_user))


@pytest.mark.parametrize("fields", [SMALL, LARGE], ids=["small", "large"])
def test_create_with_an_idempotency_key_runs_a_fixed_number_of_queries(
    client: Client, as_user: dict[str, str], fields: dict, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(8):  # + claiming the key (in its savepoint) and storing the response
        data_of(gql(client, CREATE % "id", {"input": fields, "key": "k"}, **as_user))
    # A replay: in the create's transaction (its savepoint here, and its release), the input checked
    # as a first request's is (the owner's row read), the refused claim (in a savepoint of its own),
    # then reading the record.
    with django_assert_num_queries(8):
        data_of(gql(client, CREATE % "id", {"input": fields, "key": "k"}, **as_user))


def test_update_and_delete_run_a_fixed_number_of_queries(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, django_assert_num_queries: Any
) -> None:
    task = make_task(owner=user)
    update = 'mutation($id: ID!) { updateTask(id: $id, input: {title: "new", tags: ["a"]}) { id version } }'

    with django_assert_num_queries(5):  # savepoint, row lock read, owner check, update, release
        data_of(gql(client, update, {"id": str(task.pk)}, **as_user))
    with django_assert_num_queries(4):  # savepoint, row lock read, delete, release
        data_of(gql(client, "mutation($id: ID!) { deleteTask(id: $id) }", {"id": str(task.pk)}, **as_user))


# -- parsing and validation are cached per document ----------------------------------------------------------------


def test_a_repeated_document_is_parsed_once(client: Client, as_user: dict[str, str]) -> None:
    parse_cache = _get_parse_cache(django_settings.GRAPHQL_DOCUMENT_CACHE_SIZE)
    document = f"# {uuid.uuid4()}\n" + "{ me { id username } }"  # a text no earlier test sent

    data_of(gql(client, document, **as_user))
    after_first = parse_cache.cache_info()
    data_of(gql(client, document, **as_user))
    after_second = parse_cache.cache_info()

    assert after_second.hits == after_first.hits + 1
    assert after_second.misses == after_first.misses


def test_a_repeated_document_is_validated_once(client: Client, as_user: dict[str, str]) -> None:
    validation_cache = _get_validate_cache(django_settings.GRAPHQL_DOCUMENT_CACHE_SIZE)
    document = f"# {uuid.uuid4()}\n" + "{ me { roles } }"

    before = validation_cache.cache_info()
    data_of(gql(client, document, **as_user))
    data_of(gql(client, document, **as_user))
    after = validation_cache.cache_info()

    # Validated by strawberry's ValidationCache once; the second request found the errors by the
    # document's text (api_graphql.schema.OperationExtension) and did not even hash the document.
    assert after.misses == before.misses + 1
    assert after.hits == before.hits


@pytest.mark.usefixtures("rebuilt_schemas")
def test_validation_is_remembered_per_document_and_rules(
    client: Client, as_user: dict[str, str], settings: Any
) -> None:
    document = f"# {uuid.uuid4()}\n" + "{ me { tasks { edges { node { id } } } } }"
    assert "errors" not in gql(client, document, **as_user).json()
    assert [key for key in schema_module._validated if key[1] == document]

    settings.GRAPHQL_MAX_DEPTH = 3  # a schema with other rules: the same text is validated again
    schema_module._schema_for.cache_clear()

    assert codes_of(gql(client, document, **as_user)) == ["GRAPHQL_VALIDATION_FAILED"]


def test_the_document_cache_is_bounded(client: Client) -> None:
    size = django_settings.GRAPHQL_DOCUMENT_CACHE_SIZE

    assert size and size > 0
    assert _get_parse_cache(size).cache_info().maxsize == size
    assert _get_validate_cache(size).cache_info().maxsize == size


@pytest.mark.usefixtures("rebuilt_schemas")
def test_a_document_cache_of_size_0_keeps_no_document(client: Client, as_user: dict[str, str], settings: Any) -> None:
    settings.GRAPHQL_DOCUMENT_CACHE_SIZE = 0
    schema_module._schema_for.cache_clear()
    document = f"# {uuid.uuid4()}\n" + "{ me { id } }"

    assert "errors" not in gql(client, document, **as_user).json()
    assert not [key for key in schema_module._validated if key[1] == document]
