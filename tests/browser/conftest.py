"""Headless Chromium (Debian's package, or the command CHROMIUM names) driven by Playwright, with every other host
blocked, and every Content-Security-Policy violation recorded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from tests.live import executable
from tests.streaming import asgi_server  # noqa: F401 - the fixture of the GraphiQL subscription test

CHROMIUM = executable("CHROMIUM", "chromium", "chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail(
            "Chromium is not installed (apt-get install chromium; `make test` does it as root), "
            "or the command CHROMIUM names does not run."
        )
    # Playwright's sync API keeps an event loop running in this thread, which Django takes for an
    # async context; the test's database calls are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


# Runs in every document before its own scripts: the browser's report of each violation of the page's CSP.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  const blocked = event.blockedURI || "inline";
  const where = `${event.sourceFile}:${event.lineNumber}:${event.columnNumber}`;
  window.reportCspViolation(`${event.violatedDirective} blocked ${blocked} in ${event.documentURI} (${where})`);
});
"""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page that may only talk to the test server; `page.blocked` lists what it tried elsewhere, and
    `page.csp_violations` what the Content-Security-Policy refused (the `securitypolicyviolation`
    events and the console's CSP errors)."""
    context = browser.new_context()
    violations: list[str] = []
    context.expose_function("reportCspViolation", lambda text: violations.append(text))
    context.add_init_script(_REPORT_VIOLATIONS)
    page = context.new_page()
    page.blocked = []  # type: ignore[attr-defined]
    page.csp_violations = violations  # type: ignore[attr-defined]

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(f"console: {message.text}")

    page.on("console", on_console)

    def only_local(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            page.blocked.append(route.request.url)  # type: ignore[attr-defined]
            route.abort()

    page.route("**/*", only_local)
    yield page
    context.close()
