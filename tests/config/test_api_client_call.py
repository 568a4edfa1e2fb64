"""config.middleware.api_client_call: an API client's call (REST or GraphQL) skips the session, its user
and messages; every other request (admin, browsable API, GraphiQL, a session's call) goes through them
as before."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from config.middleware import AuthenticationMiddleware, MessageMiddleware, SessionMiddleware, api_client_call
from tests.api_graphql.conftest import bearer, data_of, gql, only_error
from tests.conftest import access_token

pytestmark = pytest.mark.django_db

BEARER = {"HTTP_AUTHORIZATION": "Bearer x"}


@pytest.mark.parametrize(
    ("path", "headers", "skipped"),
    [
        ("/api/v1/tasks", BEARER, True),
        ("/api/v1/tasks/me", {"HTTP_X_API_KEY": "th_x_y"}, True),
        ("/api/v1/tasks", {**BEARER, "HTTP_ACCEPT": "application/json"}, True),
        ("/api/v1/tasks", {}, False),  # a session's call, or anonymous
        ("/api/v1/tasks", {**BEARER, "HTTP_ACCEPT": "text/html,*/*;q=0.8"}, False),  # the browsable API
        ("/admin/", BEARER, False),
        ("/graphql/", BEARER, True),
        ("/graphql/", {"HTTP_X_API_KEY": "th_x_y", "HTTP_ACCEPT": "application/graphql-response+json"}, True),
        ("/graphql/", {}, False),  # a session's call (GraphiQL's), or anonymous
        ("/graphql/", {**BEARER, "HTTP_ACCEPT": "text/html"}, False),  # GraphiQL's page
        ("/graphql/other", BEARER, False),
        ("/api/v1", BEARER, False),
        ("/api/docs/", BEARER, False),
    ],
)
def test_which_requests_skip(path: str, headers: dict[str, str], skipped: bool) -> None:
    request = RequestFactory().get(path, **headers)
    seen: dict[str, bool] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen.update(
            session=hasattr(request, "session"), user=hasattr(request, "user"), messages=hasattr(request, "_messages")
        )
        return HttpResponse("ok")

    chain = SessionMiddleware(AuthenticationMiddleware(MessageMiddleware(view)))  # type: ignore[arg-type]
    chain(request)

    assert api_client_call(request) is skipped
    assert seen == {"session": not skipped, "user": not skipped, "messages": not skipped}


def test_the_admin_keeps_its_session_with_an_authorization_header(user: Any) -> None:
    staff = get_user_model().objects.create_superuser("boss", password="pw-for-the-admin-1")
    client = Client()
    client.force_login(staff)

    response = client.get("/admin/", HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")

    assert response.status_code == 200
    assert b"boss" in response.content


def test_an_api_call_answers_the_same_and_sets_no_cookie(user: Any) -> None:
    client = Client()
    client.force_login(user)  # a session too: the credential decides, and the session stays untouched

    response = client.get("/api/v1/tasks", HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")

    assert response.status_code == 200
    assert response.json() == {"results": [], "next": None, "previous": None}
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert response["X-Frame-Options"] == "DENY"


def test_a_graphql_call_is_the_credentials_and_sets_no_cookie(user: Any, other_user: Any) -> None:
    client = Client()
    client.force_login(other_user)  # another user's session: the credential decides, the session stays untouched

    response = gql(client, "{ me { id } }", **bearer(user))

    assert data_of(response) == {"me": {"id": user.pk}}
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert response["X-Frame-Options"] == "DENY"


def test_a_refused_graphql_credential_is_not_passed_over_to_the_session(user: Any) -> None:
    client = Client()
    client.force_login(user)

    response = gql(client, "{ me { id } }", HTTP_AUTHORIZATION="Bearer nonsense")

    assert only_error(response, "UNAUTHENTICATED")
    assert not response.cookies
