"""Identity while the database is down: a credential that needs the database to be checked (an API
key not cached yet) is UNAVAILABLE, as REST answers 503 and gRPC UNAVAILABLE (docs/api/errors.md),
never an internal error."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from core.auth import api_key_create
from tests.api_graphql.conftest import gql, only_error
from tests.faults import database_unreachable

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_uncached_api_key_while_the_database_is_down_is_unavailable(user: Any) -> None:
    _, raw = api_key_create(user=user, name="k")
    client = Client(raise_request_exception=False)
    with database_unreachable():
        response = gql(client, "{ me { id } }", HTTP_X_API_KEY=raw)
    error = only_error(response, "UNAVAILABLE")
    assert error["path"] == ["me"]
    assert response.json()["data"] is None


def test_the_same_key_once_the_database_is_back_works(user: Any) -> None:
    _, raw = api_key_create(user=user, name="k")
    client = Client(raise_request_exception=False)
    with database_unreachable():
        gql(client, "{ me { id } }", HTTP_X_API_KEY=raw)
    # The outage was not cached as an unusable key.
    assert gql(client, "{ me { id } }", HTTP_X_API_KEY=raw).json() == {"data": {"me": {"id": user.pk}}}


def test_a_key_that_cannot_be_checked_is_not_counted_as_anonymous(user: Any, settings: Any) -> None:
    """Its holder is not known to be anonymous: not counted against the address's `anon` limit, which
    every client behind that address shares. REST (503) and gRPC (UNAVAILABLE) do not count it either."""
    _, raw = api_key_create(user=user, name="k")
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "anon": ["2/h"]}
    client = Client(raise_request_exception=False)
    with database_unreachable():
        responses = [gql(client, "{ me { id } }", HTTP_X_API_KEY=raw) for _ in range(3)]

    assert [only_error(response, "UNAVAILABLE")["path"] for response in responses] == [["me"]] * 3
    assert all("RateLimit-Limit" not in response for response in responses)
    # The address's anonymous callers still have their two requests.
    assert [gql(client, "{ __typename }").status_code for _ in range(3)] == [200, 200, 429]
