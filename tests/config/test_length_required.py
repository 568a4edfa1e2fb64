"""A request body sent chunked (Transfer-Encoding, no Content-Length) is refused with 411, on the
production server itself: granian passes such a body to Django without a CONTENT_LENGTH, so Django
would read it as empty (docs/api/rest.md, "Headers")."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from api_rest.auth import TokenObtainSerializer
from tasks.models import Task
from tests.factories import TaskFactory, UserFactory
from tests.live import test_database_url
from tests.observability.test_health import Process, server_environment, start_http

__all__ = ["start_http"]  # a fixture, used by name

pytestmark = pytest.mark.django_db(transaction=True)


def _send_chunked(
    server: Process, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    """Send `body` in two real chunks (`Transfer-Encoding: chunked`, no Content-Length).

    The head and the whole chunked body go out in one write: the server answers 411 as soon as it
    has read the head and may close the connection, and a client still writing chunks then would
    fail with a broken pipe instead of reading the answer."""
    half = len(body) // 2
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in (body[:half], body[half:])) + b"0\r\n\r\n"
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        client.putrequest(method, path)
        for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
            client.putheader(name, value)
        client.endheaders(message_body=encoded)
        response = client.getresponse()
        raw = response.read()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
    finally:
        client.close()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace")
    return response.status, answer_headers, body


@pytest.fixture
def server(start_http: Callable[..., Process]) -> Process:
    return start_http(server_environment(test_database_url(), settings.REDIS_URL), workers=2)


def _assert_411(status: int, headers: dict[str, str], body: Any) -> None:
    assert status == 411, body
    assert headers["content-type"] == "application/problem+json"
    assert body["code"] == "length_required"
    assert body["status"] == 411
    assert body["type"] == "urn:taskhub:problem:length_required"
    assert body["request_id"] == headers["x-request-id"]


def test_a_chunked_patch_is_refused_and_changes_nothing(server: Process) -> None:
    owner = UserFactory()
    task = TaskFactory(owner=owner, title="Before")
    version = task.version
    token = str(TokenObtainSerializer.get_token(owner).access_token)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    status, answer_headers, body = _send_chunked(
        server, "PATCH", f"/api/v1/tasks/{task.id}", json.dumps({"title": "After"}).encode(), headers
    )

    _assert_411(status, answer_headers, body)
    task.refresh_from_db()
    assert task.title == "Before"
    assert task.version == version


def test_a_chunked_create_is_refused_not_misread_as_empty(server: Process) -> None:
    owner = UserFactory()
    token = str(TokenObtainSerializer.get_token(owner).access_token)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    status, answer_headers, body = _send_chunked(
        server, "POST", "/api/v1/tasks", json.dumps({"title": "Sent chunked"}).encode(), headers
    )

    _assert_411(status, answer_headers, body)
    assert not Task.objects.exists()


def test_a_chunked_graphql_request_is_refused(server: Process) -> None:
    query = json.dumps({"query": "{ __typename }"}).encode()
    status, answer_headers, body = _send_chunked(
        server, "POST", "/graphql/", query, {"Content-Type": "application/json"}
    )
    _assert_411(status, answer_headers, body)


def test_the_same_body_with_its_length_is_served(server: Process) -> None:
    owner = UserFactory()
    task = TaskFactory(owner=owner, title="Before")
    token = str(TokenObtainSerializer.get_token(owner).access_token)
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        client.request(
            "PATCH",
            f"/api/v1/tasks/{task.id}",
            body=json.dumps({"title": "After"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = client.getresponse()
        response.read()
    finally:
        client.close()
    assert response.status == 200
    task.refresh_from_db()
    assert task.title == "After"


ORIGIN = "https://app.example.com"


def test_the_411_carries_the_headers_every_response_has(start_http: Callable[..., Process]) -> None:
    """The refusal comes from a layer below the security, CSP and CORS layers, so that a browser may
    read it and it is framed, typed and sniffed like any other answer."""
    server = start_http(server_environment(test_database_url(), settings.REDIS_URL, CORS_ALLOWED_ORIGINS=ORIGIN))
    headers = {"Content-Type": "application/json", "Origin": ORIGIN}

    status, answer_headers, body = _send_chunked(server, "POST", "/api/v1/tasks", b'{"title": "x"}', headers)

    _assert_411(status, answer_headers, body)
    assert answer_headers["access-control-allow-origin"] == ORIGIN
    assert answer_headers["x-content-type-options"] == "nosniff"
    assert answer_headers["x-frame-options"] == "DENY"
    assert "referrer-policy" in answer_headers
    assert "content-security-policy" in answer_headers
