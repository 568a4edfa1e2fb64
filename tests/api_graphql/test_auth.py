"""Identity: the JWT and API keys of REST; a session only same-origin with its CSRF token;
anonymous, bad or expired credentials get UNAUTHENTICATED."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from core.auth import api_key_create, api_key_revoke
from tasks.models import Task
from tests.api_graphql.conftest import URL, bearer, data_of, gql, only_error

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # tests.factories.UserFactory
CREATE = 'mutation { createTask(input: {title: "Forged"}) { id } }'
EVERY_FIELD = [
    '{ task(id: "6f1c2a5e-0000-4000-8000-000000000404") { id } }',
    "{ tasks { edges { cursor } } }",
    '{ searchTasks(query: "x") { edges { cursor } } }',
    "{ me { id } }",
    "{ me { tasks { edges { cursor } } } }",
    CREATE,
    'mutation { updateTask(id: "6f1c2a5e-0000-4000-8000-000000000404", input: {title: "x"}) { id } }',
    'mutation { deleteTask(id: "6f1c2a5e-0000-4000-8000-000000000404") }',
]


def _refused(response: Any) -> None:
    error = only_error(response, "UNAUTHENTICATED")
    data = response.json()["data"]
    assert data is None or set(data.values()) == {None}, data  # task(id) is nullable
    assert error["path"]


# -- UNAUTHENTICATED ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("document", EVERY_FIELD)
def test_anonymous_requests_are_unauthenticated(client: Client, document: str) -> None:
    _refused(gql(client, document))
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Bearer nonsense"},
        {"HTTP_AUTHORIZATION": "Bearer "},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNzLXdvcmQtMTIz"},
        {"HTTP_AUTHORIZATION": "Token abc"},
        {"HTTP_X_API_KEY": "nonsense"},
        {"HTTP_X_API_KEY": "th_000000000000_secret"},
    ],
)
def test_bad_credentials_are_unauthenticated(client: Client, headers: dict[str, str]) -> None:
    for document in ("{ me { id } }", CREATE):
        _refused(gql(client, document, **headers))
    assert not Task.objects.exists()


def test_a_bad_credential_is_not_replaced_by_a_session(client: Client, user: Any) -> None:
    client.force_login(user)

    response = client.get(URL, {"query": "{ me { id } }"}, HTTP_AUTHORIZATION="Bearer nonsense")

    _refused(response)


def test_an_api_key_with_a_wrong_secret_is_unauthenticated(client: Client, user: Any) -> None:
    _, raw = api_key_create(user=user, name="k")

    _refused(gql(client, "{ me { id } }", HTTP_X_API_KEY=raw[:-2] + "xx"))


def test_an_expired_access_token_is_unauthenticated(client: Client, user: Any) -> None:
    token = RefreshToken.for_user(user).access_token
    token.set_exp(lifetime=-timedelta(seconds=5))

    _refused(gql(client, "{ me { id } }", HTTP_AUTHORIZATION=f"Bearer {token}"))


def test_a_refresh_token_is_not_an_access_token(client: Client, user: Any) -> None:
    _refused(gql(client, "{ me { id } }", HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user)}"))


def test_an_expired_api_key_is_unauthenticated(client: Client, user: Any) -> None:
    key, raw = api_key_create(user=user, name="short", expires_at=timezone.now() + timedelta(hours=1))
    type(key).objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    _refused(gql(client, "{ me { id } }", HTTP_X_API_KEY=raw))


def test_a_revoked_api_key_is_unauthenticated(
    client: Client, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    key, raw = api_key_create(user=user, name="soon revoked")
    assert data_of(gql(client, "{ me { id } }", HTTP_X_API_KEY=raw))["me"]["id"] == user.pk  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(prefix=key.prefix)

    _refused(gql(client, "{ me { id } }", HTTP_X_API_KEY=raw))


# -- the same identities as REST ---------------------------------------------------------------------------------


def test_a_token_from_the_rest_token_endpoint_works(client: Client, user: Any) -> None:
    tokens = client.post(
        "/api/v1/auth/token", {"username": user.username, "password": PASSWORD}, content_type="application/json"
    )
    assert tokens.status_code == 200, tokens.content

    me = data_of(gql(client, "{ me { id username } }", HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}"))["me"]

    assert me == {"id": user.pk, "username": user.username}


def test_an_api_key_acts_as_its_user(client: Client, user: Any, make_task: Any, api_key_headers: Any) -> None:
    task = make_task(owner=user)

    data = data_of(gql(client, "{ me { id } tasks { edges { node { id } } } }", **api_key_headers(user)))

    assert data["me"]["id"] == user.pk
    assert [edge["node"]["id"] for edge in data["tasks"]["edges"]] == [str(task.pk)]


def test_the_bearer_token_wins_over_a_session(client: Client, user: Any, other_user: Any) -> None:
    client.force_login(other_user)

    me = data_of(gql(client, "{ me { id } }", **bearer(user)))["me"]

    assert me["id"] == user.pk


# -- sessions ---------------------------------------------------------------------------------------------------


@pytest.fixture
def session(user: Any) -> Client:
    """A logged-in browser: session cookie, CSRF checks enforced."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    return browser


def csrf_token(browser: Client) -> str:
    assert browser.get("/api-auth/login/").status_code == 200  # the login page sets the CSRF cookie
    return browser.cookies["csrftoken"].value


def test_a_session_queries_with_get(session: Client, user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title="Mine")

    response = session.get(URL, {"query": "{ me { id } tasks { edges { node { title } } } }"})

    data = data_of(response)
    assert data["me"]["id"] == user.pk
    assert data["tasks"]["edges"] == [{"node": {"title": task.title}}]


def test_a_session_posts_with_its_csrf_token(session: Client, user: Any) -> None:
    token = csrf_token(session)

    response = session.post(URL, json.dumps({"query": CREATE}), content_type="application/json", HTTP_X_CSRFTOKEN=token)

    data_of(response)
    assert Task.objects.get().owner_id == user.pk


def test_a_session_post_without_the_csrf_token_is_unauthenticated(session: Client) -> None:
    for document in ("{ me { id } }", CREATE):
        response = session.post(URL, json.dumps({"query": document}), content_type="application/json")
        _refused(response)
        assert "CSRF" in response.json()["errors"][0]["message"]
    assert not Task.objects.exists()


def test_a_session_post_from_another_origin_is_unauthenticated_even_with_the_token(session: Client) -> None:
    token = csrf_token(session)

    response = session.post(
        URL,
        json.dumps({"query": CREATE}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
        HTTP_ORIGIN="https://evil.example",
    )

    _refused(response)
    assert not Task.objects.exists()


def test_mutations_are_refused_over_get(session: Client) -> None:
    response = session.get(URL, {"query": CREATE})

    assert response.status_code in {400, 405}, response.content
    assert not Task.objects.exists()


def test_a_logged_out_session_is_anonymous(session: Client) -> None:
    session.logout()

    _refused(session.get(URL, {"query": "{ me { id } }"}))
