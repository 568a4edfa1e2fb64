"""The human pages work in a real browser with no network beyond this server."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_swagger_ui_renders_the_schema_from_local_assets(live_server, page: Page) -> None:
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("taskhub API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/tasks/{task_id}")
    assert page.blocked == []


def test_redoc_renders_the_schema_from_local_assets(live_server, page: Page) -> None:
    page.goto(f"{live_server.url}/api/redoc/")
    expect(page.locator("h1")).to_contain_text("taskhub API")
    assert page.blocked == []


def test_admin_login_and_task_list(live_server, page: Page) -> None:
    UserFactory(username="boss", is_staff=True, is_superuser=True)
    TaskFactory(title="Visible in the admin")
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pass-word-123")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto(f"{live_server.url}/admin/tasks/task/")
    expect(page.locator("#result_list")).to_contain_text("Visible in the admin")
    assert page.blocked == []


def test_browsable_api_after_session_login(live_server, page: Page) -> None:
    owner = UserFactory(username="reader")
    TaskFactory(owner=owner, title="Seen in the browsable API")
    page.goto(f"{live_server.url}/api-auth/login/?next=/api/v1/tasks")
    page.fill("#id_username", "reader")
    page.fill("#id_password", "pass-word-123")
    page.click("input[type=submit]")
    expect(page.locator(".response-info")).to_contain_text("Seen in the browsable API")
    assert page.blocked == []
