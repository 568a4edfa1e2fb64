"""GraphQL over HTTP (docs/api/graphql.md, "Requests"): the operation to run, the two response
media types, `application/json` (always 200) and `application/graphql-response+json` (a request
error is 400 with no `data`), and the errors of the HTTP transport, answered as problem details
(docs/api/errors.md, "GraphQL")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, RequestFactory

from api_graphql.views import GraphQLView
from tasks.models import Task
from tests.api_graphql.conftest import URL, body_of, data_of

pytestmark = pytest.mark.django_db

GRAPHQL_RESPONSE = "application/graphql-response+json"
TWO_OPERATIONS = 'mutation Create { createTask(input: {title: "first"}) { id } } query Mine { me { id } }'


def post(client: Client, payload: dict[str, Any], accept: str | None = None, **headers: Any) -> Any:
    if accept is not None:
        headers["HTTP_ACCEPT"] = accept
    return client.post(URL, json.dumps(payload), content_type="application/json", **headers)


def graphql_response_body(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].split(";")[0].strip() == GRAPHQL_RESPONSE, response["Content-Type"]
    body: dict[str, Any] = json.loads(response.content)
    return body


# -- which operation runs --------------------------------------------------------------------------------


def test_several_operations_without_operation_name_is_a_request_error(client: Client, as_user: dict[str, str]) -> None:
    """GraphQL spec, GetOperation: with several operations, operationName is required. Nothing runs."""
    body = body_of(post(client, {"query": TWO_OPERATIONS}, **as_user))

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
    assert "operation name" in error["message"]
    assert not Task.objects.exists()


def test_several_operations_without_operation_name_is_400_for_graphql_response_json(
    client: Client, as_user: dict[str, str]
) -> None:
    body = graphql_response_body(post(client, {"query": TWO_OPERATIONS}, GRAPHQL_RESPONSE, **as_user), 400)

    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert not Task.objects.exists()


@pytest.mark.parametrize("name", ["Create", "Mine"])
def test_operation_name_picks_the_operation(client: Client, as_user: dict[str, str], name: str) -> None:
    data = data_of(post(client, {"query": TWO_OPERATIONS, "operationName": name}, **as_user))

    assert list(data) == [{"Create": "createTask", "Mine": "me"}[name]]
    assert Task.objects.count() == (1 if name == "Create" else 0)


@pytest.mark.parametrize("operation_name", [None, "Mine"])
def test_one_operation_needs_no_operation_name(client: Client, as_user: dict[str, str], operation_name: Any) -> None:
    payload = {"query": "query Mine { me { username } }", "operationName": operation_name}

    assert "me" in data_of(post(client, payload, **as_user))


# -- media types -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "*/*",
        "application/*",
        "application/json, application/graphql-response+json",
        "text/html",
        f"application/json; charset=utf-8, {GRAPHQL_RESPONSE}; charset=utf-8",  # a tie
        f"{GRAPHQL_RESPONSE}; charset=utf-8; q=0.5, application/json",
        f"{GRAPHQL_RESPONSE};q=0, */*",
    ],
)
def test_application_json_by_default(client: Client, accept: str | None) -> None:
    response = post(client, {"query": "{ __typename }"}, accept)

    assert response["Content-Type"].startswith("application/json")
    assert body_of(response) == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    "accept",
    [
        GRAPHQL_RESPONSE,
        f"{GRAPHQL_RESPONSE}, application/json;q=0.9",
        f"application/json;q=0.5, {GRAPHQL_RESPONSE}",
        # Parameters other than q do not change the type (Django matches them literally).
        f"{GRAPHQL_RESPONSE};charset=utf-8",
        f"{GRAPHQL_RESPONSE}; charset=utf-8, application/json; q=0.9",
        f"application/json; charset=utf-8; q=0.5, {GRAPHQL_RESPONSE}; charset=utf-8; q=0.8",
        "APPLICATION/GRAPHQL-RESPONSE+JSON",
        "application/json;q=0, */*",
        f"*/*;q=0.1, {GRAPHQL_RESPONSE}",
    ],
)
def test_graphql_response_json_when_the_client_prefers_it(client: Client, accept: str) -> None:
    body = graphql_response_body(post(client, {"query": "{ __typename }"}, accept), 200)

    assert body == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("document", "variables", "code"),
    [
        ("{", None, "GRAPHQL_PARSE_FAILED"),
        ("{ tasks { edgez { node { id } } } }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($id: ID!) { task(id: $id) { id } }", {"id": None}, "BAD_USER_INPUT"),
        ("query($first: Int) { tasks(first: $first) { edges { cursor } } }", {"first": "ten"}, "BAD_USER_INPUT"),
    ],
    ids=["parse", "validation", "missing-variable", "variable-of-wrong-type"],
)
def test_a_request_error_is_400_for_graphql_response_json_and_200_for_json(
    client: Client, as_user: dict[str, str], document: str, variables: Any, code: str
) -> None:
    payload = {"query": document, "variables": variables}

    body = graphql_response_body(post(client, payload, GRAPHQL_RESPONSE, **as_user), 400)
    assert "data" not in body
    assert {error["extensions"]["code"] for error in body["errors"]} == {code}

    legacy = body_of(post(client, payload, "application/json", **as_user))
    assert legacy["data"] is None
    assert {error["extensions"]["code"] for error in legacy["errors"]} == {code}


@pytest.mark.parametrize(
    "accept", [f"{GRAPHQL_RESPONSE};charset=utf-8", f"{GRAPHQL_RESPONSE}; charset=utf-8; q=1, application/json;q=0.9"]
)
def test_a_request_error_is_400_when_accept_names_graphql_response_json_with_parameters(
    client: Client, as_user: dict[str, str], accept: str
) -> None:
    body = graphql_response_body(post(client, {"query": "{"}, accept, **as_user), 400)

    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["GRAPHQL_PARSE_FAILED"]


def test_a_field_error_is_200_with_data_for_graphql_response_json(client: Client, as_user: dict[str, str]) -> None:
    """An error while executing is not a request error: the response has `data` and is 200."""
    document = 'query { task(id: "00000000-0000-4000-8000-000000000000") { id } }'

    body = graphql_response_body(post(client, {"query": document}, GRAPHQL_RESPONSE, **as_user), 200)

    assert body["data"] == {"task": None}
    assert [error["extensions"]["code"] for error in body["errors"]] == ["NOT_FOUND"]


def test_a_failed_mutation_with_null_data_is_200_for_graphql_response_json(client: Client) -> None:
    """`data: null` from a non-null field that failed is still an executed operation: 200, with data."""
    document = 'mutation { deleteTask(id: "00000000-0000-4000-8000-000000000000") }'

    body = graphql_response_body(post(client, {"query": document}, GRAPHQL_RESPONSE), 200)

    assert body["data"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]


# -- errors of the HTTP transport: problem details, as REST answers the same rows ------------------------

PROBLEM = "application/problem+json"


def problem_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM, (response["Content-Type"], response.content[:300])
    body: dict[str, Any] = json.loads(response.content)
    assert body["type"] == f"urn:taskhub:problem:{code}", body
    assert (body["status"], body["code"]) == (status, code), body
    assert body["title"] and body["detail"], body
    assert body["request_id"] == response["X-Request-ID"]
    return body


CREATE = 'mutation { createTask(input: {title: "sent"}) { id } }'


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"query": "mutation { createTask(input: {title: \\"x\\"}) { id } }"', "JSON"),  # cut short
        (b'{"query": "mutation { createTask(input: {title: \\"\xff\\"}) { id } }"}', "UTF-8"),
        ('{"variables": {}}', "No GraphQL query"),
        (json.dumps([{"query": CREATE}]), "Batching"),
        (json.dumps({"query": CREATE, "operationName": "Other"}), "Unknown operation"),
        (json.dumps({"query": CREATE, "variables": []}), "variables"),
        ("123", "JSON objects"),
        ("null", "JSON objects"),
        ('"x"', "JSON objects"),
        ('{"query": "{ me { id } }", "variables": {"n": ' + "9" * 5000 + "}}", "JSON"),
    ],
    ids=[
        "not-json",
        "not-utf-8",
        "no-query",
        "batch",
        "unknown-operation-name",
        "variables-not-an-object",
        "a-number",
        "null",
        "a-string",
        "an-integer-of-5000-digits",
    ],
)
@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE])
def test_a_body_that_is_not_a_graphql_request_is_400_malformed_request(
    client: Client, as_user: dict[str, str], body: str | bytes, detail: str, accept: str | None
) -> None:
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client.post(URL, body, content_type="application/json", **as_user, **headers)

    assert detail in problem_of(response, 400, "malformed_request")["detail"]
    assert not Task.objects.exists()


def test_a_get_without_a_query_is_400_malformed_request(client: Client) -> None:
    problem_of(client.get(URL, HTTP_ACCEPT="application/json"), 400, "malformed_request")


@pytest.mark.parametrize("variables", ["123", "9" * 5000], ids=["a-number", "an-integer-of-5000-digits"])
def test_get_variables_that_are_not_an_object_are_400_malformed_request(client: Client, variables: str) -> None:
    response = client.get(URL, {"query": "{ me { id } }", "variables": variables}, HTTP_ACCEPT="application/json")
    problem_of(response, 400, "malformed_request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/graphql", ""])
def test_a_post_body_that_is_not_application_json_is_415(
    client: Client, as_user: dict[str, str], content_type: str
) -> None:
    response = client.generic("POST", URL, json.dumps({"query": CREATE}), content_type=content_type, **as_user)

    problem_of(response, 415, "unsupported_media_type")
    assert not Task.objects.exists()


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_application_json_with_parameters_or_in_capitals_is_served(client: Client, content_type: str) -> None:
    response = client.post(URL, json.dumps({"query": "{ __typename }"}), content_type=content_type)

    assert body_of(response) == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_a_method_other_than_get_and_post_is_405_with_allow(
    client: Client, as_user: dict[str, str], method: str
) -> None:
    response = client.generic(method, URL, json.dumps({"query": CREATE}), content_type="application/json", **as_user)

    problem_of(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, POST"
    assert not Task.objects.exists()


def test_a_mutation_over_get_is_405_and_not_executed(client: Client, as_user: dict[str, str]) -> None:
    """GraphQL over HTTP: GET is safe, so a mutation over GET is 405 Method Not Allowed."""
    response = client.get(URL, {"query": CREATE}, **as_user)

    problem_of(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, POST"
    assert not Task.objects.exists()


def test_the_graphiql_page_while_it_is_off_is_404_not_found(client: Client, settings: Any) -> None:
    settings.GRAPHIQL_ENABLED = False

    problem_of(client.get(URL, HTTP_ACCEPT="text/html"), 404, "not_found")


# -- the request's headers, as strawberry reads them --------------------------------------------------------


def test_the_headers_strawberry_reads_are_djangos_request_headers() -> None:
    """strawberry reads the request's headers through the view's adapter (`Accept`, for the GraphiQL
    page and for a streaming request); the adapter reads them from META when asked, with the names,
    values and lookups of Django's `request.headers`."""
    request = RequestFactory().post(
        URL,
        "{}",
        content_type="application/json; charset=utf-8",
        HTTP_ACCEPT="application/graphql-response+json, application/json;q=0.9",
        HTTP_AUTHORIZATION="Bearer x",
        HTTP_X_REQUEST_ID="abc",
        HTTP_USER_AGENT="curl/8",
    )
    django, ours = request.headers, GraphQLView.request_adapter_class(request).headers

    assert dict(ours) == dict(django)
    assert len(ours) == len(django)
    for name in ("Accept", "accept", "ACCEPT", "content-type", "Content-Length", "X-Request-Id", "x_request_id"):
        assert ours[name] == django[name]
        assert ours.get(name) == django.get(name)
        assert name in ours
    for absent in ("Origin", "if-match", "Content-Encoding"):
        assert absent not in ours and absent not in django
        assert ours.get(absent) is None and ours.get(absent, "") == ""
        with pytest.raises(KeyError):
            ours[absent]
    assert next(value for key, value in ours.items() if key.lower() == "accept") == django["Accept"]
