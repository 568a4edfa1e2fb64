"""What a production server shows to whom (docs/operations.md, "Exposure"), on granian with the
production settings: /metrics behind METRICS_TOKEN, /health's details only for staff, managers and
the metrics token, the API documentation off unless switched on, a Content-Security-Policy, and API
answers that no shared cache may keep."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from api_rest.auth import TokenObtainSerializer
from core.auth import api_key_create
from core.types import Role
from tests.factories import TaskFactory, UserFactory
from tests.live import test_database_url
from tests.observability.test_health import Answer, Process, server_environment, start_http

__all__ = ["start_http"]  # a fixture, used by name

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = os.environ["METRICS_TOKEN"]  # config.settings.test; the servers inherit it
DOCS = ["/api/schema/", "/api/docs/", "/api/redoc/", "/api/redoc/redoc.standalone.js"]


@pytest.fixture
def serve(start_http: Callable[..., Process], production_static_root: str) -> Callable[..., Process]:
    def start(**variables: str) -> Process:
        return start_http(
            server_environment(
                test_database_url(), settings.REDIS_URL, DJANGO_STATIC_ROOT=production_static_root, **variables
            ),
            workers=2,
        )

    return start


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def access_token(**fields: Any) -> str:
    return str(TokenObtainSerializer.get_token(UserFactory(**fields)).access_token)


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.body["code"] == code


# -- /metrics ---------------------------------------------------------------------------------------------


def test_metrics_need_the_token(serve: Callable[..., Process]) -> None:
    server = serve()

    missing = server.get("/metrics")
    assert_problem(missing, 401, "not_authenticated")
    assert missing.headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert_problem(server.get("/metrics", bearer(TOKEN + "x")), 401, "not_authenticated")
    assert_problem(server.get("/metrics", bearer(access_token(is_staff=True))), 401, "not_authenticated")

    scraped = server.get("/metrics", bearer(TOKEN))
    assert scraped.status == 200
    assert "api_requests_total" in scraped.body


def test_metrics_are_closed_in_production_without_a_token(serve: Callable[..., Process]) -> None:
    server = serve(METRICS_TOKEN="")

    assert_problem(server.get("/metrics"), 403, "permission_denied")
    assert_problem(server.get("/metrics", bearer("anything")), 403, "permission_denied")


# -- /health ------------------------------------------------------------------------------------------------


def test_health_details_only_for_staff_managers_and_the_metrics_token(serve: Callable[..., Process]) -> None:
    server = serve()

    for headers in ({}, bearer(access_token()), bearer(access_token(role=Role.VIEWER)), bearer("not-a-token")):
        answer = server.get("/health", headers)
        assert answer.status == 200
        assert set(answer.body) == {"status"}, (headers, answer.body)

    for headers in (bearer(TOKEN), bearer(access_token(is_staff=True)), bearer(access_token(role=Role.MANAGER))):
        answer = server.get("/health", headers)
        assert answer.status == 200
        assert {"status", "version", "components", "concerns"} <= set(answer.body), (headers, answer.body)
        assert "vendor" in answer.body["components"]["database"]


def test_health_details_for_a_staff_session(serve: Callable[..., Process]) -> None:
    """The admin's session (a staff user logged in) sees the details too."""
    from django.contrib.sessions.backends.db import SessionStore

    staff = UserFactory(is_staff=True)
    session = SessionStore()
    session["_auth_user_id"] = str(staff.pk)
    session["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[0]
    session["_auth_user_hash"] = staff.get_session_auth_hash()
    session.create()
    server = serve()

    answer = server.get("/health", {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"})

    assert "version" in answer.body, answer.body


def test_the_probes_are_unchanged(serve: Callable[..., Process]) -> None:
    server = serve()

    assert server.get("/healthz").body == {"status": "ok"}
    ready = server.get("/readyz")
    assert ready.status == 200
    assert ready.body["status"] == "ok"
    assert "database" in ready.body["components"]


# -- the API documentation ------------------------------------------------------------------------------------


def test_api_docs_are_off_in_production_by_default(serve: Callable[..., Process]) -> None:
    server = serve()

    for path in DOCS:
        assert_problem(server.get(path), 404, "not_found")


def test_api_docs_when_switched_on(serve: Callable[..., Process]) -> None:
    server = serve(API_DOCS_ENABLED="true")

    for path in DOCS:
        assert server.get(path).status == 200, path
    bundle = server.get("/api/redoc/redoc.standalone.js").body
    assert "cdn.redoc.ly" not in bundle  # nothing from the internet at run time


# -- Content-Security-Policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/login/", "/api-auth/login/", "/api/docs/", "/api/redoc/"])
def test_pages_carry_a_content_security_policy(serve: Callable[..., Process], path: str) -> None:
    server = serve(API_DOCS_ENABLED="true")

    answer = server.get(path, {"Accept": "text/html"})

    assert answer.status == 200
    policy = dict(directive.partition(" ")[::2] for directive in answer.headers["content-security-policy"].split("; "))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no inline script, no eval (no nonce: these pages use none)
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"


# -- Cache-Control --------------------------------------------------------------------------------------------


def test_api_answers_are_private_to_who_asked(serve: Callable[..., Process]) -> None:
    """An answer under /api/ or /graphql/ depends on the credential, which a shared cache does not see
    when it comes as X-API-Key: none may store it, and a client revalidates what it keeps."""
    owner = UserFactory()
    task = TaskFactory(owner=owner)
    _, key = api_key_create(user=owner, name="cache-control")
    server = serve(API_DOCS_ENABLED="true")

    answers = {
        "task": server.get(f"/api/v1/tasks/{task.pk}", {"X-API-Key": key}),
        "list": server.get("/api/v1/tasks?limit=5", {"X-API-Key": key}),
        "graphql": server.get(f"/graphql/?query=%7Btask(id:%22{task.pk}%22)%7Bid%7D%7D", {"X-API-Key": key}),
        "refused": server.get(f"/api/v1/tasks/{task.pk}", {"X-API-Key": key + "x"}),
        "schema": server.get("/api/schema/"),
    }

    assert [answer.status for answer in answers.values()] == [200, 200, 200, 401, 200]
    assert answers["task"].body["id"] == str(task.pk) and answers["graphql"].body["data"]["task"]["id"] == str(task.pk)
    for name, answer in answers.items():
        assert answer.headers.get("cache-control") == "private, no-cache", name
    not_modified = server.get(f"/api/v1/tasks/{task.pk}", {"X-API-Key": key, "If-None-Match": '"1"'})
    assert not_modified.status == 304
    assert not_modified.headers["cache-control"] == "private, no-cache"  # as the 200's (RFC 9110, 15.4.5)
    # What says otherwise keeps its own; what is no API answer gets nothing from this rule.
    assert server.get("/api/redoc/redoc.standalone.js").headers["cache-control"] == "public, max-age=86400"
    assert server.get("/healthz").headers["cache-control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
    assert "cache-control" not in server.get("/not-an-api-path").headers
