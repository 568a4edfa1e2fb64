"""config.middleware.CSPMiddleware: django-csp's header, its policy built once from the settings,
and django-csp's own path whenever a response needs another policy (a nonce, a view's decorator)."""

from __future__ import annotations

from typing import Any

import pytest
from csp.decorators import csp_exempt, csp_update
from csp.utils import build_policy
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from config.middleware import CSPMiddleware
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _run(view: Any, path: str = "/x", *, use_nonce: bool = False) -> tuple[HttpRequest, HttpResponse]:
    request = RequestFactory().get(path)

    def get_response(request: HttpRequest) -> HttpResponse:
        if use_nonce:
            request.used_nonce = str(request.csp_nonce)  # type: ignore[attr-defined]
        return view(request)  # type: ignore[no-any-return]

    response = CSPMiddleware(get_response)(request)
    return request, response


def _page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("page")


def test_an_api_response_carries_the_policy_of_the_settings(client: Client) -> None:
    response = client.get("/api/v1/tasks")

    assert response.status_code == 401
    assert response["Content-Security-Policy"] == build_policy()
    assert "nonce" not in response["Content-Security-Policy"]


def test_the_policy_follows_the_settings(settings: Any) -> None:
    _, before = _run(_page)
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}

    _, after = _run(_page)

    assert before["Content-Security-Policy"] != after["Content-Security-Policy"]
    assert after["Content-Security-Policy"] == "default-src 'none'"


def test_a_report_only_policy_and_excluded_prefixes_are_honoured(settings: Any) -> None:
    settings.CONTENT_SECURITY_POLICY = {"EXCLUDE_URL_PREFIXES": ["/skip"], "DIRECTIVES": {"default-src": ["'self'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}

    _, kept = _run(_page, "/x")
    _, skipped = _run(_page, "/skip/page")

    assert kept["Content-Security-Policy"] == "default-src 'self'"
    assert kept["Content-Security-Policy-Report-Only"] == build_policy(report_only=True)
    assert "img-src 'self'" in kept["Content-Security-Policy-Report-Only"]
    assert "Content-Security-Policy" not in skipped
    assert skipped["Content-Security-Policy-Report-Only"] == kept["Content-Security-Policy-Report-Only"]


def test_a_request_that_used_its_nonce_gets_it_in_the_policy() -> None:
    request, response = _run(_page, use_nonce=True)

    policy = response["Content-Security-Policy"]
    assert f"'nonce-{request.used_nonce}'" in policy  # type: ignore[attr-defined]
    _, plain = _run(_page)
    assert "nonce" not in plain["Content-Security-Policy"]


def test_a_view_decorator_still_changes_or_drops_the_policy() -> None:
    _, updated = _run(csp_update({"img-src": ["https://example.com"]})(_page))
    _, exempt = _run(csp_exempt()(_page))

    assert "img-src 'self' data: https://example.com" in updated["Content-Security-Policy"]
    assert "Content-Security-Policy" not in exempt


def test_the_nonce_cannot_be_asked_for_once_the_header_is_written() -> None:
    from csp.exceptions import CSPNonceError

    request, _ = _run(_page)

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)  # type: ignore[attr-defined]


def test_pages_keep_their_policy(client: Client) -> None:
    client.force_login(UserFactory())

    response = client.get("/api/v1/tasks", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == build_policy()
