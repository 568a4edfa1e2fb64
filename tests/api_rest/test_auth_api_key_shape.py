"""An `X-API-Key` that is not of the shape the service issues (`th_` + 12 hex digits + `_` + 43 URL-safe
base64 characters) is a credential that does not hold: 401 on REST, UNAUTHENTICATED on GraphQL, and
never a query. A NUL in it used to reach PostgreSQL (a DataError: 500)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from core.auth import api_key_create
from tests.api_graphql.conftest import gql, only_error
from tests.api_rest.helpers import TASKS, assert_problem

pytestmark = pytest.mark.django_db

MALFORMED = [
    "th_ab\x00cd_secret",
    "th_0123456789ab_" + "\x00" * 43,
    "th_0123456789ab_short",
    "th_ABCDEF012345_" + "a" * 43,
]


@pytest.mark.parametrize("key", MALFORMED)
def test_rest_answers_a_malformed_key_401_without_a_query(key: str, django_assert_num_queries: Any) -> None:
    client = Client(raise_request_exception=False)
    with django_assert_num_queries(0):
        response = client.get(TASKS, HTTP_X_API_KEY=key)
    body = assert_problem(response, 401, "not_authenticated")
    assert body["detail"] == "The API key is not valid."


@pytest.mark.parametrize("key", MALFORMED)
def test_graphql_answers_a_malformed_key_unauthenticated(key: str) -> None:
    response = gql(Client(raise_request_exception=False), "{ me { id } }", HTTP_X_API_KEY=key)
    assert only_error(response, "UNAUTHENTICATED")["message"] == "The API key is not valid."


def test_a_key_as_issued_still_works(user: Any) -> None:
    _, raw = api_key_create(user=user, name="k")
    assert Client().get(TASKS, HTTP_X_API_KEY=raw).status_code == 200
