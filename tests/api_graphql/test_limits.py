"""Safety limits: depth, aliases, tokens, no batching, body size; introspection, field
suggestions and GraphiQL off unless switched on (DEBUG is off in tests)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from graphql import get_introspection_query

from tasks.models import Task
from tests.api_graphql.conftest import URL, body_of, codes_of, data_of, gql

pytestmark = pytest.mark.django_db

CREATE_ONE = 'createTask(input: {title: "x"}) { id }'
INTROSPECTION = "{ __schema { types { name } } }"


def refused_before_execution(response: Any) -> list[dict[str, Any]]:
    body = body_of(response)
    assert body["data"] is None, body
    assert body["errors"], body
    assert set(codes_of(response)) == {"GRAPHQL_VALIDATION_FAILED"}, body
    assert not Task.objects.exists()
    errors: list[dict[str, Any]] = body["errors"]
    return errors


# -- depth ------------------------------------------------------------------------------------------------------


def test_the_default_depth_limit_is_eight(client: Client, as_user: dict[str, str]) -> None:
    nine_deep = "{ me { tasks { edges { node { a { b { c { d { e { f } } } } } } } } } }"
    assert django_settings.GRAPHQL_MAX_DEPTH == 8

    errors = refused_before_execution(gql(client, nine_deep, **as_user))

    assert any("exceeds maximum operation depth of 8" in error["message"] for error in errors)


@pytest.mark.usefixtures("rebuilt_schemas")
def test_deeper_than_the_limit_is_refused(client: Client, as_user: dict[str, str], settings: Any) -> None:
    settings.GRAPHQL_MAX_DEPTH = 3
    four_deep = "{ me { tasks { edges { node { id } } } } }"
    three_deep = "{ me { tasks { edges { cursor } } } }"
    through_a_fragment = "fragment F on TaskConnection { edges { node { id } } } { me { tasks { ...F } } }"

    assert data_of(gql(client, three_deep, **as_user)) == {"me": {"tasks": {"edges": []}}}
    for document in (four_deep, through_a_fragment):
        errors = refused_before_execution(gql(client, document, **as_user))
        assert "exceeds maximum operation depth of 3" in errors[0]["message"]


@pytest.mark.usefixtures("rebuilt_schemas")
def test_a_mutation_over_the_depth_limit_is_not_executed(
    client: Client, as_user: dict[str, str], settings: Any
) -> None:
    settings.GRAPHQL_MAX_DEPTH = 0

    refused_before_execution(gql(client, "mutation { " + CREATE_ONE + " }", **as_user))


# -- aliases ----------------------------------------------------------------------------------------------------


def _aliased(count: int) -> str:
    return "mutation { " + " ".join(f"a{i}: {CREATE_ONE}" for i in range(count)) + " }"


def test_more_aliases_than_the_limit_are_refused_and_nothing_runs(client: Client, as_user: dict[str, str]) -> None:
    limit = django_settings.GRAPHQL_MAX_ALIASES
    assert limit == 15

    errors = refused_before_execution(gql(client, _aliased(limit + 1), **as_user))

    assert any(f"{limit + 1} aliases found. Allowed: {limit}" in error["message"] for error in errors)


def test_aliases_up_to_the_limit_run(client: Client, as_user: dict[str, str]) -> None:
    data = data_of(gql(client, _aliased(django_settings.GRAPHQL_MAX_ALIASES), **as_user))

    assert len(data) == Task.objects.count() == 15


def test_aliases_in_nested_selections_count(client: Client, as_user: dict[str, str]) -> None:
    document = "{ me { " + " ".join(f"u{i}: username" for i in range(16)) + " } }"

    refused_before_execution(gql(client, document, **as_user))


@pytest.mark.usefixtures("rebuilt_schemas")
def test_the_alias_limit_follows_its_setting(client: Client, as_user: dict[str, str], settings: Any) -> None:
    settings.GRAPHQL_MAX_ALIASES = 1

    assert data_of(gql(client, "{ a: me { id } }", **as_user))
    refused_before_execution(gql(client, "{ a: me { id } b: me { id } }", **as_user))


# -- fragments (api_graphql.documents) ---------------------------------------------------------------------------


def _doubling(levels: int) -> str:
    """Fragments F1..Fn, each spreading the one before twice: 2**n selections once spread in place."""
    fragments = " ".join(f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(2, levels + 1))
    return f"{{ ...F{levels} }} fragment F1 on Query {{ me {{ id }} }} {fragments}"


def _chain(length: int) -> str:
    fragments = " ".join(f"fragment F{n} on Query {{ ...F{n - 1} }}" for n in range(2, length + 1))
    return f"{{ ...F{length} }} fragment F1 on Query {{ me {{ id }} }} {fragments}"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{ ...Nope }", "Unknown fragment 'Nope'."),
        (
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            "Cannot spread fragment 'A' within itself",
        ),
        (_doubling(20), "expand to more than 5000 selections"),
        (_chain(240), "more than 32 deep"),
    ],
    ids=["unknown-fragment", "fragments-spreading-each-other", "doubling-20-levels", "a-chain-of-240"],
)
def test_fragments_the_depth_and_alias_rules_cannot_walk_are_refused(
    client: Client, as_user: dict[str, str], document: str, message: str
) -> None:
    """An unknown fragment raised KeyError in strawberry's depth rule and a long chain RecursionError
    (both answered with no code); fragments spread twice at every level took exponential time
    (seconds of CPU for 20 levels). All are validation errors now, found in linear time."""
    errors = refused_before_execution(gql(client, document, **as_user))

    assert any(message in error["message"] for error in errors), errors


def test_fragments_within_the_bounds_still_run(client: Client, as_user: dict[str, str], user: Any) -> None:
    assert data_of(gql(client, _doubling(8), **as_user)) == {"me": {"id": user.pk}}  # 255 selections
    assert data_of(gql(client, _chain(32), **as_user)) == {"me": {"id": user.pk}}


# -- tokens -----------------------------------------------------------------------------------------------------


def _with_tags(count: int) -> str:
    """A createTask with `count` one-token tag strings (duplicates, stored once)."""
    return 'mutation { createTask(input: {title: "x", tags: [%s]}) { id tags } }' % ('"a" ' * count)


def test_more_tokens_than_the_limit_are_refused_and_nothing_runs(client: Client, as_user: dict[str, str]) -> None:
    assert django_settings.GRAPHQL_MAX_TOKENS == 2000

    errors = refused_before_execution(gql(client, _with_tags(2000), **as_user))

    assert "2000 tokens" in errors[0]["message"]


def test_a_syntax_error_early_in_a_long_document_is_a_parse_error(client: Client, as_user: dict[str, str]) -> None:
    """Not the token limit's error, although the document has more tokens than the limit."""
    body = body_of(gql(client, "{ } " + "a " * 2500, **as_user))

    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "Unexpected" in error["message"]


def test_the_token_limit_follows_its_setting(client: Client, as_user: dict[str, str], settings: Any) -> None:
    settings.GRAPHQL_MAX_TOKENS = 40

    assert data_of(gql(client, _with_tags(10), **as_user))["createTask"]["tags"] == ["a"]  # 31 tokens
    errors = refused_before_execution_of_more(gql(client, _with_tags(30), **as_user))  # 51 tokens

    assert "40 tokens" in errors[0]["message"]
    assert Task.objects.count() == 1


def refused_before_execution_of_more(response: Any) -> list[dict[str, Any]]:
    body = body_of(response)
    assert body["data"] is None, body
    assert set(codes_of(response)) == {"GRAPHQL_VALIDATION_FAILED"}, body
    errors: list[dict[str, Any]] = body["errors"]
    return errors


# -- batching and body size ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2])
def test_batches_are_refused_and_not_executed(client: Client, as_user: dict[str, str], count: int) -> None:
    batch = [{"query": "mutation { " + CREATE_ONE + " }"} for _ in range(count)]

    response = client.post(URL, json.dumps(batch), content_type="application/json", **as_user)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "malformed_request"
    assert "atching" in response.json()["detail"]
    assert not Task.objects.exists()


def test_a_body_over_one_mib_is_refused_and_not_executed(client: Client, as_user: dict[str, str]) -> None:
    document = 'mutation { createTask(input: {title: "x", description: "%s"}) { id } }' % ("d" * (1024 * 1024))

    response = client.post(URL, json.dumps({"query": document}), content_type="application/json", **as_user)

    assert response.status_code == 413, response.status_code
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "request_too_large"
    assert not Task.objects.exists()


# -- introspection ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [INTROSPECTION, '{ __type(name: "Task") { fields { name } } }', "{ me { id } __schema { queryType { name } } }"],
)
def test_introspection_is_off_by_default(client: Client, as_user: dict[str, str], document: str) -> None:
    assert not django_settings.DEBUG and not django_settings.GRAPHQL_INTROSPECTION_ENABLED

    errors = refused_before_execution(gql(client, document, **as_user))

    assert "introspection" in errors[0]["message"].lower()


def test_introspection_is_off_for_anonymous_clients_too(client: Client) -> None:
    refused_before_execution(gql(client, INTROSPECTION))


def test_typename_is_not_introspection(client: Client, as_user: dict[str, str]) -> None:
    assert data_of(gql(client, "{ __typename me { __typename } }", **as_user)) == {
        "__typename": "Query",
        "me": {"__typename": "Me"},
    }


def test_introspection_when_switched_on(client: Client, as_user: dict[str, str], settings: Any) -> None:
    settings.GRAPHQL_INTROSPECTION_ENABLED = True

    names = {t["name"] for t in data_of(gql(client, INTROSPECTION, **as_user))["__schema"]["types"]}

    assert {"Task", "TaskConnection", "TaskFilterInput", "Priority", "Status", "Mutation"} <= names


def test_graphiqls_introspection_query_passes_the_limits(
    client: Client, as_user: dict[str, str], settings: Any
) -> None:
    """With introspection on, the whole introspection query GraphiQL sends (graphql-core's, with every
    option: its TypeRef fragment nests `ofType` nine deep) is answered: the depth limit does not
    count introspection fields, and the query stays within the token limit."""
    settings.GRAPHQL_INTROSPECTION_ENABLED = True
    document = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )

    schema = data_of(gql(client, document, **as_user))["__schema"]

    assert schema["queryType"]["name"] == "Query"
    assert {"Task", "TaskConnection", "Mutation", "Subscription"} <= {t["name"] for t in schema["types"]}


# -- field suggestions ---------------------------------------------------------------------------------------------

MISTAKES = [
    "{ tasks { edgez { node { id } } } }",
    "{ tasks(frist: 1) { edges { cursor } } }",
    "{ tasks(ordering: CREATED) { edges { cursor } } }",
    "{ tasks(filters: {stauts: TODO}) { edges { cursor } } }",
    "{ taks { edges { cursor } } }",
]


@pytest.mark.parametrize("document", MISTAKES)
def test_no_suggestions_by_default(client: Client, as_user: dict[str, str], document: str) -> None:
    assert not django_settings.GRAPHQL_FIELD_SUGGESTIONS_ENABLED

    response = gql(client, document, **as_user)

    refused_before_execution(response)
    assert "Did you mean" not in response.content.decode()


def test_no_suggestions_for_variables_by_default(client: Client, as_user: dict[str, str]) -> None:
    document = "mutation($input: TaskCreateInput!) { createTask(input: $input) { id } }"

    response = gql(client, document, {"input": {"title": "x", "titel": "y"}}, **as_user)

    assert "Did you mean" not in response.content.decode()
    assert not Task.objects.exists()


@pytest.mark.parametrize("document", MISTAKES)
def test_suggestions_when_switched_on(client: Client, as_user: dict[str, str], settings: Any, document: str) -> None:
    settings.GRAPHQL_FIELD_SUGGESTIONS_ENABLED = True

    response = gql(client, document, **as_user)

    refused_before_execution(response)
    assert "Did you mean" in response.content.decode()


# -- GraphiQL ---------------------------------------------------------------------------------------------------------


def test_graphiql_is_not_served_by_default(client: Client) -> None:
    assert not django_settings.GRAPHIQL_ENABLED

    response = client.get(URL, HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert b"graphiql" not in response.content.lower()


def test_graphiql_when_switched_on_uses_only_local_assets(client: Client, settings: Any) -> None:
    settings.GRAPHIQL_ENABLED = True

    response = client.get(URL, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "GraphiQL" in page
    urls = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assets = [url for url in urls if not url.startswith("data:")]
    assert len(assets) >= 6, urls
    assert all(url.startswith("/static/") for url in assets), assets
    assert "unpkg.com" not in page and "cdn.jsdelivr" not in page
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content if asset.streaming else [asset.content])


def test_with_graphiql_on_a_get_for_json_still_runs_queries(
    client: Client, as_user: dict[str, str], settings: Any
) -> None:
    settings.GRAPHIQL_ENABLED = True

    response = client.get(URL, {"query": "{ me { id } }"}, HTTP_ACCEPT="application/json", **as_user)

    assert "me" in data_of(response)
