"""What a GraphQL request leaves in the logs: one access line naming the protocol, the request id and
the user; unexpected errors under the same request id; never a credential."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from observability.logging import JsonFormatter, RequestContextFilter
from tasks.models import Task
from tests.api_graphql.conftest import bearer, data_of, gql, only_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captured records carrying the request id, as the project's console handler adds it."""
    caplog.handler.addFilter(RequestContextFilter())
    caplog.set_level(logging.INFO)
    return caplog


def test_the_access_line_of_a_graphql_request(client: Client, user: Any, logs: pytest.LogCaptureFixture) -> None:
    response = gql(client, "{ me { id } }", HTTP_X_REQUEST_ID="gql-line-1", **bearer(user))

    data_of(response)
    assert response["X-Request-ID"] == "gql-line-1"
    [line] = [r for r in logs.records if r.name == "taskhub.access"]
    assert (line.method, line.path, line.status) == ("POST", "/graphql/", 200)
    assert line.request_id == "gql-line-1"
    assert line.user_id == user.pk
    assert line.protocol == "graphql"  # every request line carries its protocol


def test_a_refused_credential_logs_no_user_beside_a_session(
    client: Client, user: Any, logs: pytest.LogCaptureFixture
) -> None:
    """The call is nobody's: its credential was refused, and a session sent beside it is never used."""
    client.force_login(user)

    response = gql(client, "{ me { id } }", HTTP_AUTHORIZATION="Bearer nonsense")

    only_error(response, "UNAUTHENTICATED")
    [line] = [r for r in logs.records if r.name == "taskhub.access"]
    assert line.user_id is None


def test_an_unexpected_error_is_logged_under_the_request_id(
    client: Client, user: Any, make_task: Any, logs: pytest.LogCaptureFixture
) -> None:
    task = make_task(owner=user)
    Task.objects.filter(pk=task.pk).update(priority=7)  # unrenderable: KeyError in the resolver

    document = "query($id: ID!) { task(id: $id) { priority } }"

    response = gql(client, document, {"id": str(task.pk)}, HTTP_X_REQUEST_ID="gql-500", **bearer(user))

    only_error(response, "INTERNAL_SERVER_ERROR")
    [record] = [r for r in logs.records if r.levelno >= logging.ERROR]
    assert record.request_id == "gql-500"
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert "KeyError" in JsonFormatter().format(record)


def test_credentials_are_never_logged(
    client: Client, user: Any, api_key_headers: Any, logs: pytest.LogCaptureFixture
) -> None:
    token_headers = bearer(user)
    key_headers = api_key_headers(user)
    bad_key = {"HTTP_X_API_KEY": "th_0123456789ab_not-the-real-secret"}

    for headers in (token_headers, key_headers, bad_key, {"HTTP_AUTHORIZATION": "Bearer forged.jwt.value"}):
        gql(client, "{ me { id } }", **headers)
        gql(client, 'mutation { createTask(input: {title: ""}) { id } }', **headers)

    text = "\n".join(JsonFormatter().format(record) for record in logs.records)
    assert logs.records
    secrets = [
        token_headers["HTTP_AUTHORIZATION"].split()[1],
        key_headers["HTTP_X_API_KEY"],
        key_headers["HTTP_X_API_KEY"].split("_", 2)[2],  # the secret after `th_<prefix>_`, which may hold `_`
        "not-the-real-secret",
        "forged.jwt.value",
    ]
    for secret in secrets:
        assert secret not in text
