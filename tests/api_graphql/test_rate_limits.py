"""RATE_LIMITED: HTTP 429 + Retry-After with a GraphQL error body, per user or per client IP, counted in
the same windows as REST; a refused operation does nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tasks.models import Task
from tests.api_graphql.conftest import bearer, data_of, gql

pytestmark = pytest.mark.django_db

ME = "{ me { id } }"


def assert_rate_limited(response: Any) -> dict[str, Any]:
    assert response.status_code == 429, response.content
    assert response["Content-Type"].startswith("application/json")
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 3600
    body = json.loads(response.content)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": retry_after}
    assert error["message"]
    return body


def test_limits_are_off_unless_switched_on(client: Client, as_user: dict[str, str]) -> None:
    assert not django_settings.RATE_LIMITS_ENABLED

    for _ in range(5):
        response = gql(client, ME, **as_user)
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response


def test_429_with_retry_after_and_a_graphql_error(client: Client, as_user: dict[str, str], rate_limits: Any) -> None:
    rate_limits(user=["3/h"])

    allowed = [gql(client, ME, **as_user) for _ in range(3)]
    refused = gql(client, ME, **as_user)

    for response in allowed:
        data_of(response)
    assert [r["RateLimit-Remaining"] for r in allowed] == ["2", "1", "0"]
    assert all(r["RateLimit-Limit"] == "3" for r in allowed)
    assert_rate_limited(refused)
    assert refused["RateLimit-Remaining"] == "0"


def test_a_refused_mutation_does_nothing(client: Client, as_user: dict[str, str], rate_limits: Any) -> None:
    rate_limits(user=["1/h"])
    create = 'mutation { createTask(input: {title: "%s"}) { id } }'
    data_of(gql(client, create % "first", **as_user))

    assert_rate_limited(gql(client, create % "second", **as_user))
    assert list(Task.objects.values_list("title", flat=True)) == ["first"]


def test_anonymous_clients_are_limited_per_ip(client: Client, rate_limits: Any) -> None:
    rate_limits(anon=["2/h"])

    first = [gql(client, ME, REMOTE_ADDR="198.51.100.1") for _ in range(2)]
    refused = gql(client, ME, REMOTE_ADDR="198.51.100.1")
    other_ip = gql(client, ME, REMOTE_ADDR="198.51.100.2")

    # Counted although refused for lack of credentials.
    assert [r.json()["errors"][0]["extensions"]["code"] for r in first] == ["UNAUTHENTICATED"] * 2
    assert_rate_limited(refused)
    assert other_ip.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_forged_forwarded_for_does_not_reset_the_limit(client: Client, rate_limits: Any) -> None:
    rate_limits(anon=["1/h"])
    gql(client, ME, REMOTE_ADDR="198.51.100.7")

    refused = gql(client, ME, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.99")

    assert_rate_limited(refused)


def test_users_are_limited_separately(
    client: Client, as_user: dict[str, str], other_user: Any, rate_limits: Any
) -> None:
    rate_limits(user=["1/h"])
    data_of(gql(client, ME, **as_user))

    assert_rate_limited(gql(client, ME, **as_user))
    data_of(gql(client, ME, **bearer(other_user)))


def test_graphql_and_rest_count_in_the_same_windows(client: Client, as_user: dict[str, str], rate_limits: Any) -> None:
    rate_limits(user=["2/h"])

    assert client.get("/api/v1/tasks", **as_user).status_code == 200
    data_of(gql(client, ME, **as_user))

    assert_rate_limited(gql(client, ME, **as_user))
    assert client.get("/api/v1/tasks", **as_user).status_code == 429


def test_an_api_key_is_limited_as_its_user(
    client: Client, user: Any, as_user: dict[str, str], api_key_headers: Any, rate_limits: Any
) -> None:
    rate_limits(user=["1/h"])
    data_of(gql(client, ME, **as_user))

    assert_rate_limited(gql(client, ME, **api_key_headers(user)))


@pytest.mark.redis
def test_counters_live_in_redis(client: Client, as_user: dict[str, str], user: Any, rate_limits: Any) -> None:
    from django.core.cache import cache

    rate_limits(user=["5/h"])
    data_of(gql(client, ME, **as_user))

    # Shared by every process: the counter is a Redis key, not process memory.
    keys = cache.client.get_client().keys(f"*rl:user:user:{user.pk}:*")  # type: ignore[attr-defined]
    assert len(keys) == 1


def test_429_in_the_media_type_the_client_prefers(client: Client, as_user: dict[str, str], rate_limits: Any) -> None:
    """A client that prefers application/graphql-response+json gets it for a refusal too, with no
    `data` entry: nothing ran (docs/api/graphql.md, "Requests")."""
    rate_limits(user=["1/h"])
    accept = {"HTTP_ACCEPT": "application/graphql-response+json, application/json;q=0.9"}
    data_of(gql(client, ME, **as_user))

    refused = gql(client, ME, **as_user, **accept)

    assert refused.status_code == 429, refused.content
    assert refused["Content-Type"].startswith("application/graphql-response+json")
    body = json.loads(refused.content)
    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["RATE_LIMITED"]


def test_each_write_of_a_request_counts(client: Client, as_user: dict[str, str], rate_limits: Any) -> None:
    """Aliased mutation fields are several writes in one request: each past the first counts once more,
    as each is a request of its own over REST and gRPC. The refused ones write nothing."""
    rate_limits(user=["3/h"])
    creates = " ".join(f'a{n}: createTask(input: {{title: "t{n}"}}) {{ id }}' for n in range(5))

    body = json.loads(gql(client, "mutation { " + creates + " }", **as_user).content)

    # The fields are non-null: the refused one nulls `data`, and the ones after it do not run.
    assert body["data"] is None
    [error] = body["errors"]
    assert error["path"] == ["a3"] and error["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < error["extensions"]["retryAfter"] <= 3600
    assert sorted(Task.objects.values_list("title", flat=True)) == ["t0", "t1", "t2"]
    assert_rate_limited(gql(client, ME, **as_user))  # the same counter as every other request
