"""GraphiQL works in a real browser: local assets, a session login, and a query run from the editor."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import Page, Response, expect

from tests.conftest import access_token
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

QUERY = "{ me { username tasks(first: 5) { edges { node { title } } } } }"


def _is_graphql_post(response: Response) -> bool:
    return response.url.split("?")[0].endswith("/graphql/") and response.request.method == "POST"


def test_graphiql_runs_a_query_with_the_session(live_server, settings, page: Page) -> None:
    settings.GRAPHIQL_ENABLED = True
    settings.GRAPHQL_INTROSPECTION_ENABLED = True
    owner = UserFactory(username="grapher", is_staff=True)
    TaskFactory(owner=owner, title="Shown by GraphiQL")
    TaskFactory(title="Someone else's task")

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "grapher")
    page.fill("#id_password", "pass-word-123")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()

    # GraphiQL fetches the schema with a session POST as soon as it renders (introspection).
    with page.expect_response(_is_graphql_post) as introspection:
        page_response = page.goto(f"{live_server.url}/graphql/")
    assert page_response is not None
    assert "'nonce-" in page_response.headers["content-security-policy"]  # its inline script runs by nonce
    assert introspection.value.status == 200
    assert "errors" not in introspection.value.json(), introspection.value.text()[:500]
    expect(page).to_have_title("taskhub GraphiQL")
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    expect(editor).to_be_visible()

    # Replace the welcome text: select all in the editor, then insert the query as one text input
    # (typing key by key would let CodeMirror auto-close the braces).
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(QUERY)
    expect(editor).to_contain_text("tasks(first: 5)")

    with page.expect_response(_is_graphql_post) as run:
        page.locator(".graphiql-execute-button").click()
    assert run.value.status == 200
    # The page sent the session's CSRF token (read from the csrftoken cookie by js-cookie).
    assert run.value.request.headers.get("x-csrftoken")
    assert json.loads(run.value.request.post_data or "{}")["query"] == QUERY
    body = run.value.json()
    assert "errors" not in body, body
    assert body["data"]["me"] == {
        "username": "grapher",
        "tasks": {"edges": [{"node": {"title": "Shown by GraphiQL"}}]},
    }

    result = page.locator(".graphiql-response")
    expect(result).to_contain_text('"title": "Shown by GraphiQL"')
    expect(result).not_to_contain_text("Someone else's task")
    assert page.blocked == []
    assert page.csp_violations == []  # type: ignore[attr-defined]


SUBSCRIPTION = "subscription Live { taskEvents { type task { title } } }"


def test_graphiql_runs_a_subscription_over_the_websocket(asgi_server: str, settings, page: Page) -> None:
    """The page's own fetcher (graphql-ws, bundled in graphiql.min.js) opens ws://<same host>/graphql/
    with the Headers tab as the `connection_init` payload; a change made over GraphQL HTTP appears."""
    settings.GRAPHIQL_ENABLED = True
    settings.GRAPHQL_INTROSPECTION_ENABLED = True
    token = access_token(UserFactory(username="watcher"))
    sent: list[str] = []
    page.on("websocket", lambda socket: socket.on("framesent", lambda payload: sent.append(str(payload))))

    # The editor and the Headers tab are filled from the page's URL parameters (`q`, `headers`),
    # which it decodes with decodeURIComponent: spaces as %20.
    headers = json.dumps({"Authorization": f"Bearer {token}"})
    page.goto(f"{asgi_server}/graphql/?{urlencode({'q': SUBSCRIPTION, 'headers': headers}, quote_via=quote)}")
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_contain_text("taskEvents")
    with page.expect_websocket() as opened:
        page.locator(".graphiql-execute-button").click()
    assert opened.value.url == asgi_server.replace("http://", "ws://") + "/graphql/"
    # GraphiQL subscribes once the server has acknowledged the token; the server registers the
    # subscription as it reads the message, which the short wait covers.
    for _ in range(100):
        if any('"subscribe"' in frame for frame in sent):
            break
        page.wait_for_timeout(50)
    assert json.loads(sent[0]) == {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    page.wait_for_timeout(300)

    request = urllib.request.Request(
        f"{asgi_server}/graphql/",
        data=json.dumps({"query": 'mutation { createTask(input: {title: "Seen live"}) { id } }'}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert "errors" not in json.loads(response.read())

    result = page.locator(".graphiql-response")
    expect(result).to_contain_text('"type": "CREATED"')
    expect(result).to_contain_text('"title": "Seen live"')
    assert page.blocked == []
    assert page.csp_violations == []  # type: ignore[attr-defined]
