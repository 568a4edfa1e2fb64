"""Session authentication (the browsable API): reads work, writes need a same-origin CSRF token."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tasks.models import Task
from tests.api_rest.conftest import CommittingAPIClient
from tests.api_rest.helpers import TASKS, assert_problem, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(user: Any) -> APIClient:
    """A logged-in browser: session cookie, CSRF enforced, server errors answered rather than raised."""
    client = CommittingAPIClient(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    return client


def csrf_token(client: APIClient) -> str:
    assert client.get("/api-auth/login/").status_code == 200  # the login page sets the CSRF cookie
    return client.cookies["csrftoken"].value


def test_session_reads_json(session: APIClient, user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title="Mine")

    listed = session.get(TASKS)
    fetched = session.get(task_url(task.pk))

    assert listed.status_code == 200, listed.content
    assert [item["id"] for item in listed.json()["results"]] == [str(task.pk)]
    assert fetched.status_code == 200, fetched.content
    assert fetched.json()["title"] == "Mine"


def test_session_renders_the_browsable_api(session: APIClient, user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title="Shown in HTML")

    listed = session.get(TASKS, HTTP_ACCEPT="text/html")
    fetched = session.get(task_url(task.pk), HTTP_ACCEPT="text/html")

    for response in (listed, fetched):
        assert response.status_code == 200, response.content[:300]
        assert response["Content-Type"].startswith("text/html")
        assert b"Django REST framework" in response.content
    assert b"Shown in HTML" in fetched.content


def test_browsable_api_with_a_jwt_renders(api: APIClient, user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title="Rendered")

    response = api.get(task_url(task.pk), HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"Rendered" in response.content


@pytest.mark.parametrize("method", ["post", "patch", "put", "delete"])
def test_unsafe_request_with_session_and_no_csrf_token_is_refused(
    session: APIClient, user: Any, make_task: Any, method: str
) -> None:
    task = make_task(owner=user, title="Keep")
    url = TASKS if method == "post" else task_url(task.pk)

    response = getattr(session, method)(url, {"title": "Forged"}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert list(Task.objects.values_list("title", flat=True)) == ["Keep"]


def test_csrf_refusal_says_why(session: APIClient) -> None:
    body = assert_problem(session.post(TASKS, {"title": "Forged"}, format="json"), 403, "permission_denied")

    # The user's role allows writing; telling them otherwise would send them to the wrong fix.
    assert "CSRF" in body["detail"]


def test_session_write_with_a_csrf_token_from_the_same_origin_works(session: APIClient) -> None:
    token = csrf_token(session)

    response = session.post(TASKS, {"title": "From the browsable API"}, format="json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201, response.content
    assert Task.objects.get().title == "From the browsable API"


def test_session_write_from_another_origin_is_refused_even_with_the_token(session: APIClient) -> None:
    token = csrf_token(session)

    response = session.post(
        TASKS, {"title": "Cross-site"}, format="json", HTTP_X_CSRFTOKEN=token, HTTP_ORIGIN="https://evil.example"
    )

    assert_problem(response, 403, "permission_denied")
    assert not Task.objects.exists()


def test_without_session_or_token_the_browsable_api_is_401(anon: APIClient) -> None:
    response = anon.get(TASKS, HTTP_ACCEPT="text/html")

    assert response.status_code == 401
