"""Every REST row of the error table (docs/api/errors.md), and the HTTP-only errors, as RFC 9457 problem details.

(429 lives in test_rate_limits.py; 401 variants in test_auth_tokens.py and test_api_keys.py.)
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from core.auth import api_key_create
from tasks.models import IdempotencyRecord, Task
from tests.api_rest.helpers import PROBLEM_KEYS, TASKS, assert_problem, task_url
from tests.conftest import access_token
from tests.faults import database_unreachable, row_locked, statement_timeout

pytestmark = pytest.mark.django_db

UNKNOWN_ID = "6f1c2a5e-0000-4000-8000-000000000404"


# -- 400 ---------------------------------------------------------------------------------------------------


def test_400_invalid_input_names_the_fields(api: APIClient) -> None:
    response = api.post(TASKS, {"title": "x", "priority": "urgent", "status": "done"}, format="json")

    body = assert_problem(response, 400, "invalid_input", fields={"priority", "status"})
    assert set(body) == PROBLEM_KEYS | {"errors"}


@pytest.mark.parametrize("payload", ["{bad json", '{"title": "x",}', "[", "\x00"])
def test_400_malformed_json(api: APIClient, payload: str) -> None:
    response = api.post(TASKS, payload, content_type="application/json")

    assert_problem(response, 400, "malformed_request")
    assert not Task.objects.exists()


def test_400_a_body_naming_a_field_twice(api: APIClient) -> None:
    """Python's JSON decoder would keep the last value ("b") and save it; which counts is a guess."""
    response = api.post(TASKS, '{"title": "a", "title": "b"}', content_type="application/json")

    body = assert_problem(response, 400, "malformed_request")
    assert "Duplicate key 'title'" in body["detail"]
    assert not Task.objects.exists()


def test_400_a_patch_naming_a_field_twice_changes_nothing(api: APIClient) -> None:
    task = api.post(TASKS, {"title": "Keep me"}, format="json").json()

    response = api.patch(task_url(task["id"]), '{"title": "a", "title": "b"}', content_type="application/json")

    assert_problem(response, 400, "malformed_request")
    assert Task.objects.get().title == "Keep me"


@pytest.mark.parametrize("depth", [65, 100_000])
def test_400_json_nested_too_deeply(api: APIClient, depth: int) -> None:
    """Deeper than core.encoding.MAX_JSON_DEPTH: once a RecursionError, a 500."""
    payload = '{"title": "x", "tags": ' + "[" * depth + "]" * depth + "}"

    response = api.post(TASKS, payload, content_type="application/json")

    body = assert_problem(response, 400, "malformed_request")
    assert "Nested deeper than 64 levels" in body["detail"]
    assert not Task.objects.exists()


def test_json_nested_within_the_limit_reaches_the_serializer(api: APIClient) -> None:
    payload = '{"title": "x", "tags": ' + "[" * 64 + "]" * 64 + "}"  # 65 levels with the body: one too many
    assert_problem(api.post(TASKS, payload, content_type="application/json"), 400, "malformed_request")

    payload = '{"title": "x", "tags": ' + "[" * 63 + "]" * 63 + "}"  # 64 levels: parsed, then refused by type
    assert_problem(api.post(TASKS, payload, content_type="application/json"), 400, "invalid_input", fields={"tags.0"})


def test_400_unknown_fields(api: APIClient) -> None:
    response = api.post(TASKS, {"title": "x", "colour": "red", "size": 3}, format="json")

    body = assert_problem(response, 400, "invalid_input", fields={"colour", "size"})
    assert body["errors"]["colour"] == ["Unknown field."]


# -- 401 / 403 / 404 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer nonsense", "Basic dXNlcjpwYXNz"])
def test_401_problem_with_www_authenticate(client_for: Any, authorization: str | None) -> None:
    client = client_for(None)
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    response = client.get(TASKS)

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_403_viewer_writing(client_for: Any, viewer: Any) -> None:
    assert_problem(client_for(viewer).post(TASKS, {"title": "x"}, format="json"), 403, "permission_denied")


def test_403_read_only_api_key_writing(client_for: Any, user: Any) -> None:
    _, raw = api_key_create(user=user, name="ro", read_only=True)
    client = client_for(None)
    client.credentials(HTTP_X_API_KEY=raw)

    assert_problem(client.post(TASKS, {"title": "x"}, format="json"), 403, "permission_denied")


def test_403_cache_stats_for_an_editor(api: APIClient) -> None:
    assert_problem(api.get("/api/v1/cache/stats"), 403, "permission_denied")


@pytest.mark.parametrize(
    "path",
    [
        f"{TASKS}/{UNKNOWN_ID}",
        f"{TASKS}/not-a-uuid",
        f"{TASKS}/123",
        f"{TASKS}/{UNKNOWN_ID}/extra",
        "/api/v1/nothing-here",
        "/api/v2/tasks",
        "/api/",
        f"{TASKS}/",
    ],
)
def test_404_problem(api: APIClient, path: str) -> None:
    assert_problem(api.get(path), 404, "not_found")


def test_404_for_unknown_id_on_writes(api: APIClient) -> None:
    url = task_url(uuid.uuid4())

    assert_problem(api.patch(url, {"title": "x"}, format="json"), 404, "not_found")
    assert_problem(api.put(url, {"title": "x"}, format="json"), 404, "not_found")
    assert_problem(api.delete(url), 404, "not_found")


# -- 405 / 406 / 412 / 413 / 415 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", TASKS, "GET, POST"),
        ("put", TASKS, "GET, POST"),
        ("post", f"{TASKS}/{uuid.UUID(int=1)}", "GET, PUT, PATCH, DELETE"),
        ("post", f"{TASKS}/me", "GET"),
        ("delete", "/api/v1/cache/stats", "GET"),
    ],
)
def test_405_problem_with_allow(api: APIClient, method: str, path: str, allowed: str) -> None:
    response = getattr(api, method)(path, {}, format="json")

    assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"].startswith(allowed)


def test_406_problem(api: APIClient) -> None:
    assert_problem(api.get(TASKS, HTTP_ACCEPT="application/xml"), 406, "not_acceptable")


def test_412_problem_with_current_version(api: APIClient, make_task: Any, user: Any) -> None:
    task = make_task(owner=user)

    body = assert_problem(api.patch(task_url(task.pk), {"title": "x"}, format="json", HTTP_IF_MATCH='"2"'), 412)

    assert body["code"] == "stale_version"
    assert body["current_version"] == 1


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 3 * 1024 * 1024])
def test_413_body_over_1_mib(api: APIClient, size: int) -> None:
    padding = size - len(json.dumps({"title": "x", "description": ""}))
    payload = json.dumps({"title": "x", "description": "d" * padding})
    assert len(payload) == size

    response = api.post(TASKS, payload, content_type="application/json")

    assert_problem(response, 413, "request_too_large")
    assert not Task.objects.exists()


def test_a_body_just_under_1_mib_is_parsed(api: APIClient) -> None:
    payload = json.dumps({"title": "x", "description": "d" * (1024 * 1024 - 100)})

    # Parsed and refused by validation (description ≤ 10,000 chars), not by the size limit.
    assert_problem(api.post(TASKS, payload, content_type="application/json"), 400, fields={"description"})


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("text/plain", "title=x"),
        ("application/x-www-form-urlencoded", "title=x"),
        ("application/xml", "<task><title>x</title></task>"),
    ],
)
def test_415_unsupported_body(api: APIClient, content_type: str, payload: str) -> None:
    response = api.post(TASKS, payload, content_type=content_type)

    assert_problem(response, 415, "unsupported_media_type")
    assert not Task.objects.exists()


@pytest.mark.parametrize("charset", ["zlib", "bz2", "rot13", "quopri"])
@pytest.mark.parametrize("method", ["post", "patch", "put"])
def test_a_charset_that_is_no_text_encoding_is_415(
    api: APIClient, user: Any, make_task: Any, method: str, charset: str
) -> None:
    """Python knows these codecs, so Django keeps the parameter, but they turn bytes into bytes or text
    into text: decoding a body with one once raised TypeError, zlib.error or OSError, a 500."""
    task = make_task(owner=user, title="Keep")
    path = TASKS if method == "post" else f"{TASKS}/{task.pk}"

    response = getattr(api, method)(path, b'{"title": "x"}', content_type=f"application/json; charset={charset}")

    assert_problem(response, 415, "unsupported_media_type")
    assert list(Task.objects.values_list("title", flat=True)) == ["Keep"]


@pytest.mark.parametrize("charset", ["utf-16", "latin-1"])
def test_a_charset_that_is_a_text_encoding_is_honoured(api: APIClient, charset: str) -> None:
    body = json.dumps({"title": "Café"}, ensure_ascii=False).encode(charset)

    response = api.post(TASKS, body, content_type=f"application/json; charset={charset}")

    assert response.status_code == 201, response.content
    assert Task.objects.get().title == "Café"


# -- 422 / 409 (Idempotency-Key) ---------------------------------------------------------------------------------


def test_422_and_409_for_idempotency_keys(api: APIClient, user: Any) -> None:
    assert api.post(TASKS, {"title": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    assert_problem(
        api.post(TASKS, {"title": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k"), 422, "idempotency_key_reused"
    )
    IdempotencyRecord.objects.filter(user=user, key="k").update(response=None)
    assert_problem(
        api.post(TASKS, {"title": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k"), 409, "idempotency_key_in_flight"
    )


# -- request id ----------------------------------------------------------------------------------------------


def test_problem_carries_the_clients_request_id(api: APIClient) -> None:
    response = api.get(task_url(uuid.uuid4()), HTTP_X_REQUEST_ID="client-id-42")

    assert response["X-Request-ID"] == "client-id-42"
    assert assert_problem(response, 404)["request_id"] == "client-id-42"


def test_an_unsafe_request_id_is_replaced(api: APIClient) -> None:
    response = api.get(task_url(uuid.uuid4()), HTTP_X_REQUEST_ID="bad id\nforged log line")

    body = assert_problem(response, 404)
    assert body["request_id"] != "bad id\nforged log line"
    assert "\n" not in response["X-Request-ID"]


# -- 500 -----------------------------------------------------------------------------------------------------


def test_500_is_a_generic_problem_with_the_request_id(user: Any, make_task: Any) -> None:
    task = make_task(owner=user)
    # A priority no code path can write: rendering the task then fails unexpectedly (KeyError).
    Task.objects.filter(pk=task.pk).update(priority=7)
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")

    response = client.get(task_url(task.pk), HTTP_X_REQUEST_ID="trace-me-500")

    body = assert_problem(response, 500, "internal")
    assert set(body) == PROBLEM_KEYS
    assert body["request_id"] == "trace-me-500"
    text = response.content.decode()
    for leak in ("Traceback", "KeyError", 'File "', "priority", "api_rest", ".py"):
        assert leak not in text


# -- 503: the database is unreachable ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_503_when_the_database_is_unreachable(client_for: Any, user: Any, make_task: Any) -> None:
    task = make_task(owner=user)
    client = client_for(user)

    with database_unreachable():
        responses = [
            client.get(TASKS),
            client.get(task_url(task.pk)),
            client.post(TASKS, {"title": "x"}, format="json"),
            client.patch(task_url(task.pk), {"title": "x"}, format="json"),
            client.delete(task_url(task.pk)),
        ]

    for response in responses:
        assert_problem(response, 503, "unavailable")
        assert int(response["Retry-After"]) > 0
    # Once the database is back, so is the service; nothing was written meanwhile.
    assert client.get(task_url(task.pk)).status_code == 200
    assert Task.objects.count() == 1


# -- 504: the statement timeout fires (PostgreSQL) -----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_504_when_the_statement_timeout_fires(client_for: Any, user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title="Locked")
    client = client_for(user)
    with row_locked(task.pk), statement_timeout(milliseconds=200):
        response = client.patch(task_url(task.pk), {"title": "Changed"}, format="json")

    assert_problem(response, 504, "timeout")
    stored = Task.objects.get(pk=task.pk)
    assert (stored.title, stored.version) == ("Locked", 1)
