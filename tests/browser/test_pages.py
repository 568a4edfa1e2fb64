"""The human pages work in a real browser with no network beyond this server, under the
Content-Security-Policy: each renders, and the browser reports no violation of the policy."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, Response, expect

from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api_docs(settings: Any) -> None:
    settings.API_DOCS_ENABLED = True  # off by default outside DJANGO_DEBUG


def assert_under_csp(response: Response | None) -> None:
    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-eval" not in policy


def assert_clean(page: Page) -> None:
    assert page.blocked == []  # type: ignore[attr-defined]
    assert page.csp_violations == [], "\n".join(page.csp_violations)  # type: ignore[attr-defined]


def test_swagger_ui_renders_the_schema_from_local_assets(live_server, api_docs: None, page: Page) -> None:
    assert_under_csp(page.goto(f"{live_server.url}/api/docs/"))
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("taskhub API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/tasks/{task_id}")
    page.locator(".opblock-summary-path").first.click()  # an operation opens: the UI runs, not only renders
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert_clean(page)


def test_redoc_renders_the_schema_from_local_assets(live_server, api_docs: None, page: Page) -> None:
    assert_under_csp(page.goto(f"{live_server.url}/api/redoc/"))
    expect(page.locator("h1")).to_contain_text("taskhub API")
    expect(page.locator("a[href='https://redocly.com/redoc/']")).to_be_visible()  # the menu's foot, with its logo
    page.locator("input.search-input").fill("tasks")  # the search runs in ReDoc's worker
    expect(page.locator("[data-role='search:results']").first).to_be_visible()
    assert_clean(page)


def test_admin_login_and_task_list(live_server, page: Page) -> None:
    UserFactory(username="boss", is_staff=True, is_superuser=True)
    TaskFactory(title="Visible in the admin")
    assert_under_csp(page.goto(f"{live_server.url}/admin/"))
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pass-word-123")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto(f"{live_server.url}/admin/tasks/task/")
    expect(page.locator("#result_list")).to_contain_text("Visible in the admin")
    page.locator("#action-toggle").check()  # the admin's own scripts run: select every row
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    assert_clean(page)


def test_browsable_api_after_session_login(live_server, page: Page) -> None:
    owner = UserFactory(username="reader")
    TaskFactory(owner=owner, title="Seen in the browsable API")
    assert_under_csp(page.goto(f"{live_server.url}/api-auth/login/?next=/api/v1/tasks"))
    page.fill("#id_username", "reader")
    page.fill("#id_password", "pass-word-123")
    page.click("input[type=submit]")
    expect(page.locator(".response-info")).to_contain_text("Seen in the browsable API")
    # The page's scripts sit at the end of its body: the response shows before Bootstrap has bound its
    # handlers, and a click that early opens nothing. The login's redirect is no `goto`, which would wait.
    page.wait_for_load_state("load")
    page.locator("a.dropdown-toggle").first.click()  # Bootstrap's scripts run: the user menu opens
    expect(page.locator(".dropdown-menu").first).to_be_visible()
    page.locator("#logoutForm button").click()  # logging out needs no inline script
    page.goto(f"{live_server.url}/api/v1/tasks")
    expect(page.locator(".response-info")).to_contain_text("not_authenticated")
    assert_clean(page)
