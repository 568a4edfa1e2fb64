"""POST /api/v1/auth/token, /token/refresh (rotation, roles from the database), /token/revoke, and
what the task endpoints say about missing, invalid and expired access tokens."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from api_rest.auth import RoleRefreshToken
from core.types import Role
from tasks.models import Task
from tests.api_rest.helpers import TASKS, assert_problem

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
REVOKE = "/api/v1/auth/token/revoke"
PASSWORD = "pass-word-123"  # tests.factories.UserFactory


def obtain(client: APIClient, user: Any) -> dict[str, str]:
    response = client.post(TOKEN, {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(client_for: Any, access: str) -> APIClient:
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


# -- obtain -------------------------------------------------------------------------------------------------


def test_an_empty_format_on_the_token_route_is_ignored_as_drf_ignores_it(anon: APIClient, user: Any) -> None:
    """The task routes refuse `?format=` (their list names its query parameters); the token routes take
    none, and an empty one was once a 404 there as a side effect."""
    response = anon.post(f"{TOKEN}?format=", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content


def test_good_credentials_give_an_access_and_a_refresh_token(anon: APIClient, user: Any, client_for: Any) -> None:
    tokens = obtain(anon, user)

    assert set(tokens) == {"access", "refresh"}
    access = AccessToken(tokens["access"])
    assert access["user_id"] == str(user.pk)
    assert access["roles"] == [Role.EDITOR]
    assert RefreshToken(tokens["refresh"])["user_id"] == str(user.pk)
    created = bearer(client_for, tokens["access"]).post(TASKS, {"title": "with my token"}, format="json")
    assert created.status_code == 201
    assert created.json()["owner"] == user.pk


@pytest.mark.parametrize(
    ("username", "password"),
    [("{user}", "wrong-password"), ("nobody", PASSWORD), ("{user}", PASSWORD.upper())],
    ids=["wrong-password", "unknown-user", "wrong-case"],
)
def test_bad_credentials_are_401_problem(anon: APIClient, user: Any, username: str, password: str) -> None:
    response = anon.post(TOKEN, {"username": username.format(user=user.username), "password": password}, format="json")

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "access" not in response.json()


def test_inactive_user_gets_no_token(anon: APIClient, user: Any) -> None:
    user.is_active = False
    user.save()

    response = anon.post(TOKEN, {"username": user.username, "password": PASSWORD}, format="json")

    assert_problem(response, 401, "not_authenticated")


def test_missing_fields_are_400(anon: APIClient) -> None:
    assert_problem(anon.post(TOKEN, {}, format="json"), 400, "invalid_input", fields={"username", "password"})


def test_blank_password_is_400(anon: APIClient, user: Any) -> None:
    response = anon.post(TOKEN, {"username": user.username, "password": ""}, format="json")

    assert_problem(response, 400, "invalid_input", fields={"password"})


def test_token_endpoint_only_takes_post(anon: APIClient) -> None:
    assert_problem(anon.get(TOKEN), 405, "method_not_allowed")


# -- refresh ------------------------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_refresh_token_stops_working(anon: APIClient, user: Any, client_for: Any) -> None:
    first = obtain(anon, user)

    rotated = anon.post(REFRESH, {"refresh": first["refresh"]}, format="json")

    assert rotated.status_code == 200, rotated.content
    second = rotated.json()
    assert set(second) == {"access", "refresh"}
    assert second["refresh"] != first["refresh"]
    assert bearer(client_for, second["access"]).get(TASKS).status_code == 200
    # The new refresh token works once more; the old one is blacklisted.
    assert anon.post(REFRESH, {"refresh": second["refresh"]}, format="json").status_code == 200
    reused = anon.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert_problem(reused, 401, "not_authenticated")
    assert reused["WWW-Authenticate"].startswith("Bearer")


def test_refresh_failure_detail_is_a_plain_sentence(anon: APIClient, user: Any) -> None:
    tokens = obtain(anon, user)
    anon.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")

    body = assert_problem(anon.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401)

    # Problem details are for people: no Python reprs of DRF's ErrorDetail dicts.
    assert "ErrorDetail" not in body["detail"]
    assert not body["detail"].startswith("{")


@pytest.mark.django_db(transaction=True)
def test_one_refresh_token_sent_twice_at_once_gives_one_new_pair(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both requests pass simplejwt's blacklist check (in `verify`) before either blacklists the token
    (the barrier holds them there, widening the window a real race has): only one may get new tokens."""
    refresh = str(RefreshToken.for_user(user))
    barrier = threading.Barrier(2, timeout=10)
    verify = RoleRefreshToken.verify

    def verify_then_wait(token: RoleRefreshToken) -> None:
        verify(token)
        barrier.wait()

    monkeypatch.setattr(RoleRefreshToken, "verify", verify_then_wait)
    answers: list[Any] = []

    def post() -> None:
        try:
            answers.append(APIClient().post(REFRESH, {"refresh": refresh}, format="json"))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answer.status_code for answer in answers) == [200, 401], [a.content for a in answers]
    refused = next(answer for answer in answers if answer.status_code == 401)
    assert_problem(refused, 401, "not_authenticated")


def test_refresh_takes_the_roles_from_the_database(anon: APIClient, user: Any, client_for: Any) -> None:
    tokens = obtain(anon, user)
    assert bearer(client_for, tokens["access"]).post(TASKS, {"title": "as editor"}, format="json").status_code == 201

    user.groups.set([Group.objects.get(name=Role.VIEWER)])
    refreshed = anon.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").json()

    assert AccessToken(refreshed["access"])["roles"] == [Role.VIEWER]
    client = bearer(client_for, refreshed["access"])
    assert client.get(TASKS).status_code == 200
    assert_problem(client.post(TASKS, {"title": "as viewer"}, format="json"), 403, "permission_denied")
    assert Task.objects.count() == 1


def test_refresh_of_a_deactivated_user_is_401(anon: APIClient, user: Any) -> None:
    tokens = obtain(anon, user)
    user.is_active = False
    user.save()

    assert_problem(anon.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401, "not_authenticated")


def test_refresh_of_a_deleted_user_is_401(anon: APIClient, user: Any) -> None:
    tokens = obtain(anon, user)
    user.delete()

    assert_problem(anon.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401, "not_authenticated")


@pytest.mark.parametrize("which", ["access", "garbage"])
def test_refresh_with_something_else_is_401(anon: APIClient, user: Any, which: str) -> None:
    value = obtain(anon, user)["access"] if which == "access" else "not.a.token"

    assert_problem(anon.post(REFRESH, {"refresh": value}, format="json"), 401, "not_authenticated")


def test_refresh_without_a_token_is_400(anon: APIClient) -> None:
    assert_problem(anon.post(REFRESH, {}, format="json"), 400, "invalid_input", fields={"refresh"})


# -- revoke -------------------------------------------------------------------------------------------------


def test_revoke_is_204_and_the_refresh_token_then_fails(anon: APIClient, user: Any) -> None:
    tokens = obtain(anon, user)

    revoked = anon.post(REVOKE, {"refresh": tokens["refresh"]}, format="json")

    assert revoked.status_code == 204
    assert revoked.content == b""
    assert_problem(anon.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401, "not_authenticated")
    assert_problem(anon.post(REVOKE, {"refresh": tokens["refresh"]}, format="json"), 401, "not_authenticated")


def test_revoke_of_a_rotated_refresh_token_keeps_the_old_one_dead(anon: APIClient, user: Any) -> None:
    first = obtain(anon, user)
    second = anon.post(REFRESH, {"refresh": first["refresh"]}, format="json").json()

    assert anon.post(REVOKE, {"refresh": second["refresh"]}, format="json").status_code == 204

    assert_problem(anon.post(REFRESH, {"refresh": second["refresh"]}, format="json"), 401)
    assert_problem(anon.post(REFRESH, {"refresh": first["refresh"]}, format="json"), 401)


@pytest.mark.parametrize(("data", "status"), [({}, 400), ({"refresh": "nonsense"}, 401)])
def test_revoke_needs_a_refresh_token(anon: APIClient, data: dict, status: int) -> None:
    assert_problem(anon.post(REVOKE, data, format="json"), status)


def test_revoke_refuses_an_access_token(anon: APIClient, user: Any) -> None:
    tokens = obtain(anon, user)

    assert_problem(anon.post(REVOKE, {"refresh": tokens["access"]}, format="json"), 401, "not_authenticated")


# -- access tokens on the task endpoints ------------------------------------------------------------------


def _expired_access(user: Any) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=-1))
    return str(token)


def _foreign_access(user: Any) -> str:
    payload = dict(AccessToken.for_user(user).payload)
    return jwt.encode(payload, "someone-elses-signing-key-" + "z" * 40, algorithm="HS256")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer {expired}",
        "Bearer {foreign}",
        "Bearer {refresh}",
        "Bearer {access}x",
    ],
    ids=["missing", "empty", "blank", "garbage", "expired", "other-key", "refresh-token", "tampered"],
)
def test_missing_invalid_or_expired_token_is_401_with_www_authenticate(
    client_for: Any, user: Any, make_task: Any, authorization: str | None
) -> None:
    task = make_task(owner=user)
    client = client_for(None)
    if authorization is not None:
        values = {
            "expired": _expired_access(user),
            "foreign": _foreign_access(user),
            "refresh": str(RefreshToken.for_user(user)),
            "access": str(AccessToken.for_user(user)),
        }
        client.credentials(HTTP_AUTHORIZATION=authorization.format(**values))

    for response in (
        client.get(TASKS),
        client.get(f"{TASKS}/{task.pk}"),
        client.post(TASKS, {"title": "x"}, format="json"),
        client.delete(f"{TASKS}/{task.pk}"),
    ):
        assert_problem(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert Task.objects.filter(pk=task.pk).exists()
    assert Task.objects.count() == 1
