"""REST bodies are typed as strictly as GraphQL and gRPC (api_rest/serializers.py): a string field takes
only a JSON string, a boolean only a JSON boolean, a tag only a string, and every body refuses fields it
does not know. Each refusal is a 400 problem naming the field, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tasks.models import Task
from tests.api_rest.helpers import TASKS, assert_problem, task_url

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
REVOKE = "/api/v1/auth/token/revoke"
PASSWORD = "pass-word-123"  # tests.factories.UserFactory

WRONG_TYPES = [
    ({"title": 123}, "title"),
    ({"title": 1.5}, "title"),
    ({"title": True}, "title"),
    ({"title": ["t"]}, "title"),
    ({"title": {"text": "t"}}, "title"),
    ({"description": 5}, "description"),
    ({"priority": 3}, "priority"),
    ({"priority": ["high"]}, "priority"),
    ({"status": 1}, "status"),
    ({"status": True}, "status"),
    ({"completed": "yes"}, "completed"),
    ({"completed": "true"}, "completed"),
    ({"completed": 1}, "completed"),
    ({"completed": 0}, "completed"),
    ({"completed": None}, "completed"),
    ({"due_date": 1_900_000_000}, "due_date"),
    ({"tags": [1]}, "tags"),
    ({"tags": ["ok", 2.5]}, "tags"),
    ({"tags": [None]}, "tags"),
    ({"tags": [["nested"]]}, "tags"),
]


def _field_of(body: dict[str, Any]) -> set[str]:
    return {name.split(".")[0] for name in body["errors"]}


@pytest.mark.parametrize(("data", "field"), WRONG_TYPES)
def test_create_refuses_a_value_of_the_wrong_json_type(api: APIClient, data: dict, field: str) -> None:
    response = api.post(TASKS, {"title": "t", **data}, format="json")

    body = assert_problem(response, 400, "invalid_input")
    assert _field_of(body) == {field}, body
    assert not Task.objects.exists()


@pytest.mark.parametrize(("data", "field"), WRONG_TYPES)
@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_refuses_a_value_of_the_wrong_json_type(
    api: APIClient, make_task: Any, user: Any, method: str, data: dict, field: str
) -> None:
    task = make_task(owner=user, title="Before")

    response = getattr(api, method)(task_url(task.pk), {"title": "After", **data}, format="json")

    body = assert_problem(response, 400, "invalid_input")
    assert _field_of(body) == {field}, body
    task.refresh_from_db()
    assert (task.title, task.version) == ("Before", 1)


@pytest.mark.parametrize("method", ["post", "patch", "put"])
def test_task_bodies_refuse_unknown_fields(api: APIClient, make_task: Any, user: Any, method: str) -> None:
    url = TASKS if method == "post" else task_url(make_task(owner=user).pk)

    response = getattr(api, method)(url, {"title": "t", "colour": "red", "id": "x"}, format="json")

    body = assert_problem(response, 400, "invalid_input", fields={"colour", "id"})
    assert body["errors"]["colour"] == ["Unknown field."]


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"username": 123}, {"username"}),
        ({"password": 123}, {"password"}),
        ({"password": ["pass-word-123"]}, {"password"}),
        ({"remember_me": True}, {"remember_me"}),
    ],
)
def test_token_refuses_wrong_types_and_unknown_fields(anon: APIClient, user: Any, data: dict, fields: set[str]) -> None:
    response = anon.post(TOKEN, {"username": user.username, "password": PASSWORD, **data}, format="json")

    assert_problem(response, 400, "invalid_input", fields=fields)


@pytest.mark.parametrize("path", [REFRESH, REVOKE])
@pytest.mark.parametrize(
    ("data", "fields"),
    [({"refresh": 123}, {"refresh"}), ({"refresh": ["x"]}, {"refresh"}), ({"refresh": "x", "access": "y"}, {"access"})],
)
def test_refresh_and_revoke_refuse_wrong_types_and_unknown_fields(
    anon: APIClient, path: str, data: dict, fields: set[str]
) -> None:
    assert_problem(anon.post(path, data, format="json"), 400, "invalid_input", fields=fields)


def test_a_title_that_is_a_number_is_not_stored_as_text(api: APIClient) -> None:
    """The probe's finding: `"title": 123` used to be stored as "123"."""
    response = api.post(TASKS, {"title": 123}, format="json")

    assert_problem(response, 400, "invalid_input", fields={"title"})
    assert not Task.objects.filter(title="123").exists()


def test_a_password_is_taken_as_sent_with_its_surrounding_spaces(anon: APIClient, user: Any) -> None:
    """Found by schemathesis: the password was trimmed, so "  secret  " could never log in, and a
    password of spaces was 400 "blank" instead of a wrong password."""
    user.set_password("  spaced out  ")
    user.save()

    assert anon.post(TOKEN, {"username": user.username, "password": "  spaced out  "}, format="json").status_code == 200
    assert_problem(
        anon.post(TOKEN, {"username": user.username, "password": "spaced out"}, format="json"), 401, "not_authenticated"
    )
    assert_problem(anon.post(TOKEN, {"username": user.username, "password": "   "}, format="json"), 401)


@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        (TASKS, {"title": "a\x00b"}, "title"),
        (TASKS, {"title": "t", "description": "\x00"}, "description"),
        (TASKS, {"title": "t", "tags": ["a\x00"]}, "tags"),
        (TOKEN, {"username": "a\x00", "password": PASSWORD}, "username"),
        (REFRESH, {"refresh": "\x00"}, "refresh"),
    ],
)
def test_a_nul_character_in_a_body_string_is_400(api: APIClient, path: str, data: dict, field: str) -> None:
    """The schema says so (a pattern without NUL); PostgreSQL could not store it."""
    body = assert_problem(api.post(path, data, format="json"), 400, "invalid_input")

    assert _field_of(body) == {field}, body
