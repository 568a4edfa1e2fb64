"""api_graphql.execution: plain fields completed in one pass give exactly what graphql-core's per-field
execution gives (data and errors, paths included), and lists resolve a fixed number of fields
through graphql-core whatever the page size.

Each document runs twice on the real schema: once as served, once with strawberry's own execution
context (the reference), and the results must be equal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api_graphql.execution import PlainFieldsExecutionContext
from api_graphql.schema import build_schema
from api_graphql.types import Status
from tests.api_graphql.conftest import TASK_FIELDS, bearer, data_of, gql
from tests.api_graphql.test_visibility import view_context

pytestmark = pytest.mark.django_db

DOCUMENTS = {
    "task": "query($id: ID!) { task(id: $id) { FIELDS } }".replace("FIELDS", TASK_FIELDS),
    "aliases, __typename, fragments": """
        query($id: ID!) { task(id: $id) { __typename key: id ...Parts ... on Task { t2: title } } }
        fragment Parts on Task { title tags dueDate completedAt priority status }
    """,
    "skip and include": """
        query($id: ID!, $yes: Boolean!, $no: Boolean!) {
          task(id: $id) { id title @include(if: $yes) description @skip(if: $yes) version @include(if: $no) }
        }
    """,
    "tasks": """
        { tasks(first: 3) { __typename edges { cursor node { FIELDS } }
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }
    """.replace("FIELDS", TASK_FIELDS),
    "the same node twice": "{ tasks(first: 2) { edges { node { id } n2: node { title } } } }",
    "me.tasks": "{ me { id tasks(first: 2) { edges { node { id status } } pageInfo { endCursor } } } }",
    "searchTasks": '{ searchTasks(query: "e", first: 5) { edges { cursor node { id title } } } }',
    "an empty page": '{ searchTasks(query: "none has it", first: 5) { edges { cursor } pageInfo { startCursor } } }',
    "not found": '{ task(id: "6a0e7e1c-2b43-4bd8-9d1b-0a7d9f1d2c3e") { id } }',
}


@pytest.fixture
def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    served = build_schema()
    reference = build_schema()
    reference.execution_context_class = StrawberryGraphQLCoreExecutionContext
    assert served.execution_context_class is PlainFieldsExecutionContext
    return served, reference


def _result(schema: strawberry.Schema, document: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:
    result = schema.execute_sync(document, variable_values=variables, context_value=view_context(headers))
    errors = [(error.message, error.path, error.extensions) for error in result.errors or ()]
    return result.data, errors


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_served_results_are_graphql_cores(
    name: str, schemas: tuple[strawberry.Schema, strawberry.Schema], user: Any, make_task: Any
) -> None:
    task = make_task(owner=user, title="Due one", tags=["a", "b"], due_date=datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC))
    make_task(owner=user, title="Another")
    make_task(owner=user, title="A third")
    variables = {"id": str(task.pk), "yes": True, "no": False}
    served, reference = schemas

    expected = _result(reference, DOCUMENTS[name], variables, bearer(user))
    got = _result(served, DOCUMENTS[name], variables, bearer(user))

    assert got == expected
    assert expected[0] is not None


# -- values that do not fit: graphql-core reports them, as it would without the fast path ----------------------------


@strawberry.type(name="Task")  # a plain type's name: api_graphql.execution completes it
class ProbeTask:
    title: str
    count: int
    status: Status | None
    tags: list[str]


@strawberry.type
class ProbeQuery:
    @strawberry.field
    def tasks(self) -> list[ProbeTask | None]:
        return [
            ProbeTask(title="fine", count=1, status=Status.TODO, tags=["x"]),
            ProbeTask(title=None, count=2, status=None, tags=[]),  # type: ignore[arg-type]  # null, non-null field
            ProbeTask(title="big", count=2**40, status=Status.COMPLETED, tags=["y"]),  # no Int can hold it
            ProbeTask(title="tags", count=3, status=None, tags=["z", None]),  # type: ignore[list-item]
            ProbeTask(title="no tags", count=4, status=None, tags=None),  # type: ignore[arg-type]
        ]


@pytest.mark.parametrize(
    "document",
    ["{ tasks { title count status tags } }", "{ tasks { __typename s: status } }", "{ tasks { count } }"],
)
def test_values_that_do_not_fit_are_reported_by_graphql_core(document: str) -> None:
    served = strawberry.Schema(query=ProbeQuery, execution_context_class=PlainFieldsExecutionContext)
    reference = strawberry.Schema(query=ProbeQuery)

    got, expected = served.execute_sync(document), reference.execute_sync(document)

    assert got.data == expected.data
    assert [(e.message, e.path) for e in got.errors or ()] == [(e.message, e.path) for e in expected.errors or ()]
    if "title" in document:
        fine = {"title": "fine", "count": 1, "status": "TODO", "tags": ["x"]}
        assert got.data == {"tasks": [fine, None, None, None, None]}
        paths = [["tasks", 1, "title"], ["tasks", 2, "count"], ["tasks", 3, "tags", 1], ["tasks", 4, "tags"]]
        assert [e.path for e in got.errors or ()] == paths


# -- graphql-core resolves a fixed number of fields, whatever the page size ------------------------------------------


def test_a_page_resolves_a_fixed_number_of_fields_through_graphql_core(
    client: Any, user: Any, make_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(12):
        make_task(owner=user, title=f"Task {n}")
    resolved: list[str] = []
    build_resolve_info = PlainFieldsExecutionContext.build_resolve_info

    def counting(self: Any, field_def: Any, field_nodes: Any, *args: Any) -> Any:
        resolved.append(field_nodes[0].name.value)
        return build_resolve_info(self, field_def, field_nodes, *args)

    monkeypatch.setattr(PlainFieldsExecutionContext, "build_resolve_info", counting)
    document = "query($n: Int) { tasks(first: $n) { edges { cursor node { FIELDS } } pageInfo { endCursor } } }"

    for size in (1, 12):
        resolved.clear()
        data = data_of(gql(client, document.replace("FIELDS", TASK_FIELDS), {"n": size}, **bearer(user)))
        assert len(data["tasks"]["edges"]) == size
        assert resolved == ["tasks"]
