"""Cached rows (api_graphql.types.TaskRow) and what api_graphql.execution remembers beside them: a read
served from a row answers exactly what a read of the model answers, byte for byte; a changed task is
never served from an older completion; selections that depend on variables are compiled per request."""

from __future__ import annotations

import base64
import json
import pickle
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from graphql import parse

from api_graphql.execution import JSON_ENCODER, Rendered, RenderedList, encode_json, is_static
from api_graphql.types import TaskRow
from core.cache import safe_cache
from tasks import cache as task_cache
from tasks.cache import task_to_row
from tasks.models import Task
from tasks.pagination import ORDERINGS, cursor_after
from tasks.selectors import ROW_INDEX
from tests.api_graphql.conftest import TASK_FIELDS, data_of, gql
from tests.tasks.helpers import page_keys

pytestmark = pytest.mark.django_db

TASK = "query($id: ID!) { task(id: $id) {" + TASK_FIELDS + "} }"
PAGE = "edges { cursor node {" + TASK_FIELDS + "} } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
UPDATE = "mutation($id: ID!, $title: String!) { updateTask(id: $id, input: {title: $title}) { version } }"
# Text the encoder escapes: quotes, a backslash, a control character, non-ASCII.
AWKWARD = 'Ünïcode "quoted" \\ tab\there ✓ 🚀'


def _strawberrys_encoding(content: bytes) -> bytes:
    """What strawberry's Django view writes for the same data."""
    return json.dumps(json.loads(content), cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def test_a_row_reads_as_its_model(user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title=AWKWARD, tags=["a", "b"], due_date=datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC))
    model = Task.objects.get(pk=task.pk)
    row = TaskRow(task_to_row(model))

    for name in ROW_INDEX:
        assert (getattr(row, name), type(getattr(row, name))) == (getattr(model, name), type(getattr(model, name)))
    assert row.pk == model.pk
    assert task_to_row(row.to_model()) == task_to_row(model)
    for ordering in ORDERINGS:
        assert cursor_after(row, ordering) == cursor_after(model, ordering)  # type: ignore[arg-type]


def test_task_from_a_row_answers_what_the_model_answers(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, django_assert_num_queries: Any
) -> None:
    task = make_task(owner=user, title=AWKWARD, tags=["é", "b"], due_date=datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC))
    variables = {"id": str(task.pk)}
    with django_assert_num_queries(1):  # a cache miss: task_get's model
        from_model = gql(client, TASK, variables, **as_user).content

    from_row = gql(client, TASK, variables, **as_user).content  # completed from the row, and remembered
    remembered = gql(client, TASK, variables, **as_user).content

    assert from_model == from_row == remembered == _strawberrys_encoding(from_model)
    assert json.loads(from_row)["data"]["task"]["title"] == AWKWARD


def test_a_page_of_rows_answers_what_a_page_of_models_answers(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    """`tasks` reads rows, `searchTasks` models; with a blank query they list the same page."""
    for number in range(4):
        make_task(owner=user, title=f"{AWKWARD} {number}", tags=[str(number)])
    rows = "{ tasks(first: 3) {" + PAGE + "} }"
    models = '{ tasks: searchTasks(query: "", first: 3) {' + PAGE + "} }"

    first = gql(client, rows, **as_user).content
    again = gql(client, rows, **as_user).content  # every task from the remembered completions
    reference = gql(client, models, **as_user).content

    assert first == again == reference == _strawberrys_encoding(reference)
    assert len(json.loads(first)["data"]["tasks"]["edges"]) == 3


def test_a_changed_task_is_never_served_from_an_older_completion(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Before")
    variables = {"id": str(task.pk)}
    page = "{ tasks(first: 5) { edges { node { id title version } } } }"
    for _ in range(2):  # remembered, for the task and for the page
        data_of(gql(client, TASK, variables, **as_user))
        data_of(gql(client, page, **as_user))

    data_of(gql(client, UPDATE, {**variables, "title": "After"}, **as_user))

    node = data_of(gql(client, TASK, variables, **as_user))["task"]
    assert (node["title"], node["version"]) == ("After", 2)
    assert data_of(gql(client, page, **as_user))["tasks"]["edges"] == [
        {"node": {"id": str(task.pk), "title": "After", "version": 2}}
    ]


@pytest.mark.parametrize(
    "document",
    [
        "query($id: ID!, $yes: Boolean!) { task(id: $id) { id title @include(if: $yes) } }",
        "query($id: ID!, $yes: Boolean!) { task(id: $id) { id ...T @include(if: $yes) } } fragment T on Task { title }",
        "query($yes: Boolean!) { tasks(first: 1) { edges { node { id title @include(if: $yes) } } } }",
        "query($yes: Boolean!) { tasks(first: 1) { edges { node { id ... on Task @skip(if: $yes) { x: id } "
        "title @include(if: $yes) } } } }",
    ],
    ids=["field", "fragment spread", "in a page", "inline fragment"],
)
def test_a_selection_with_directives_follows_each_requests_variables(
    document: str, client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Shown or not")
    for yes in (True, False, True, False):
        data = data_of(gql(client, document, {"id": str(task.pk), "yes": yes}, **as_user))
        node = data["task"] if "task" in data else data["tasks"]["edges"][0]["node"]
        assert set(node) == ({"id", "title"} if yes else {"id", "x"} if "x: id" in document else {"id"})


def test_only_operations_without_directives_or_fragment_variables_are_static() -> None:
    def static(text: str) -> bool:
        document = parse(text, experimental_fragment_arguments=True)
        operation = document.definitions[0]
        fragments = {
            definition.name.value: type("Details", (), {"definition": definition})()
            for definition in document.definitions[1:]
        }
        return is_static(operation, fragments)  # type: ignore[arg-type]

    assert static("{ tasks { edges { node { id ...F ... on Task { title } } } } } fragment F on Task { tags }")
    assert not static("query($y: Boolean!) { task(id: 1) { id @include(if: $y) } }")
    assert not static("{ task(id: 1) { ... on Task @skip(if: true) { id } } }")
    assert not static("{ task(id: 1) { ...F } } fragment F on Task { id @skip(if: false) }")
    assert not static("{ task(id: 1) { ...F(n: 1) } } fragment F($n: Int) on Task { id }")


def test_encode_json_writes_what_the_encoder_writes() -> None:
    rendered = Rendered({"title": AWKWARD, "tags": ["é"], "completedAt": None, "version": 3, "completed": False})
    value = {
        "data": {"edges": [{"node": rendered}, {"node": rendered, "n2": {}}], "empty": [], "plain": {"k": [1, 2.5]}},
        "errors": [{"message": AWKWARD, "path": ["edges", 0], "extensions": {"code": "X", 7: "int key"}}],
        "extensions": {"decimal": Decimal("1.20"), "at": datetime(2031, 1, 2, tzinfo=UTC), "tuple": (1, rendered)},
    }

    expected = json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))
    assert rendered.json == JSON_ENCODER.encode(dict(rendered))
    assert encode_json(value) == JSON_ENCODER.encode(value) == expected


def test_an_edge_is_remembered_per_ordering(client: Client, as_user: dict[str, str], user: Any, make_task: Any) -> None:
    task = make_task(owner=user)
    document = "query($o: TaskOrdering!) { tasks(first: 1, ordering: $o) { edges { cursor node { id } } } }"

    def cursor_ordering(ordering: str) -> str:
        edge = data_of(gql(client, document, {"o": ordering}, **as_user))["tasks"]["edges"][0]
        assert edge["node"]["id"] == str(task.pk)
        payload = json.loads(base64.urlsafe_b64decode(edge["cursor"] + "=" * (-len(edge["cursor"]) % 4)))
        return str(payload["o"])

    for _ in range(2):
        assert cursor_ordering("CREATED_AT_DESC") == "-created_at"
        assert cursor_ordering("DUE_DATE") == "due_date"


def test_each_selection_of_a_cached_page_gets_its_own_fields(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any
) -> None:
    """A cached page's edges keep what each selection completed of them, one per selection."""
    for number in range(3):
        make_task(owner=user, title=f"Task {number}")
    ids_only = "{ tasks(first: 3) { edges { node { id } } } }"
    titles = "{ tasks(first: 3) { edges { node { title } } pageInfo { hasNextPage } } }"

    for _ in range(2):
        edges = data_of(gql(client, ids_only, **as_user))["tasks"]["edges"]
        assert [set(edge["node"]) for edge in edges] == [{"id"}] * 3
        page = data_of(gql(client, titles, **as_user))["tasks"]
        assert [edge["node"]["title"] for edge in page["edges"]] == ["Task 2", "Task 1", "Task 0"]
        assert page["pageInfo"] == {"hasNextPage": False}


def test_a_page_entry_replaced_under_the_same_key_is_answered_as_it_now_is(
    client: Client, as_user: dict[str, str], user: Any, make_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edges and their completion are remembered per page and checked against the cache entry's
    bytes: an entry another process stored under the same key (same generation) is what is answered."""
    for number in range(3):
        make_task(owner=user, title=f"Task {number}")
    keys = page_keys(monkeypatch)
    document = "{ tasks(first: 3) { edges { node { title } } } }"

    def titles() -> list[str]:
        return [edge["node"]["title"] for edge in data_of(gql(client, document, **as_user))["tasks"]["edges"]]

    assert titles() == titles() == ["Task 2", "Task 1", "Task 0"]
    generation, (encoded, next_cursor, previous_cursor) = safe_cache.get(keys[-1])
    safe_cache.set(
        keys[-1], (generation, task_cache.page_entry(pickle.loads(encoded)[:1], next_cursor, previous_cursor))
    )

    assert titles() == ["Task 2"]
    assert len(set(keys)) == 1


def test_a_rendered_list_carries_what_the_encoder_writes() -> None:
    rendered = Rendered({"title": AWKWARD, "tags": ["é"]})
    items = [{"node": rendered, "cursor": "c"}, {"node": rendered}]

    listed = RenderedList(items)

    assert listed == items
    assert listed.json == encode_json({"edges": listed})[len('{"edges":') : -1] == JSON_ENCODER.encode(items)
