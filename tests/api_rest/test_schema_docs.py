"""OpenAPI 3 at /api/schema/, Swagger UI at /api/docs/ and ReDoc at /api/redoc/, all served locally."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

from api_rest.serializers import TaskOutputSerializer, task_to_json

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _api_docs(settings: Any) -> None:
    settings.API_DOCS_ENABLED = True  # off by default outside DJANGO_DEBUG (tests/config/test_exposure.py)


TASK_PATHS = {
    "/api/v1/tasks": {"get", "post"},
    "/api/v1/tasks/{task_id}": {"get", "put", "patch", "delete"},
    "/api/v1/tasks/me": {"get"},
}
OTHER_PATHS = {
    "/api/v1/auth/token": {"post"},
    "/api/v1/auth/token/refresh": {"post"},
    "/api/v1/auth/token/revoke": {"post"},
    "/api/v1/cache/stats": {"get"},
    "/api/v1/tasks/events": {"get"},
}
LIST_PARAMETERS = {
    "status",
    "priority",
    "completed",
    "tag",
    "due_before",
    "due_after",
    "search",
    "ordering",
    "limit",
    "cursor",
}


@pytest.fixture
def schema(anon: APIClient) -> dict[str, Any]:
    response = anon.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_openapi_3_with_every_endpoint(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"]
    for path, methods in {**TASK_PATHS, **OTHER_PATHS}.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_schema_documents_the_event_stream(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/v1/tasks/events"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/event-stream"}
    parameters = {(parameter["in"], parameter["name"]) for parameter in operation["parameters"]}
    assert {("header", "Last-Event-ID"), ("query", "after"), ("query", "status"), ("query", "mine")} <= parameters
    assert {"400", "401", "404", "406", "429"} <= set(operation["responses"])
    assert {"jwtAuth", "apiKeyAuth"} == {name for requirement in operation["security"] for name in requirement}


def test_schema_in_json_equals_the_yaml_one(anon: APIClient, schema: dict[str, Any]) -> None:
    response = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert json.loads(response.content) == schema


def test_schema_documents_the_task_shape_and_the_list_parameters(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    retrieve = schema["paths"]["/api/v1/tasks/{task_id}"]["get"]
    ref = retrieve["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    task_schema = components[ref.rsplit("/", 1)[1]]
    listing = schema["paths"]["/api/v1/tasks"]["get"]

    assert set(task_schema["properties"]) == set(TaskOutputSerializer().fields)
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} >= LIST_PARAMETERS
    page_ref = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert set(components[page_ref.rsplit("/", 1)[1]]["properties"]) == {"results", "next", "previous"}
    assert "201" in schema["paths"]["/api/v1/tasks"]["post"]["responses"]
    assert "304" in retrieve["responses"]
    assert "412" in schema["paths"]["/api/v1/tasks/{task_id}"]["patch"]["responses"]


def test_schema_documents_both_credentials(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"].values()

    assert {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"} in schemes
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"} in schemes


def test_schema_documents_the_token_pair_returned_by_the_token_endpoint(schema: dict[str, Any]) -> None:
    response = schema["paths"]["/api/v1/auth/token"]["post"]["responses"]["200"]

    assert "content" in response, response  # the endpoint answers {"access": ..., "refresh": ...}
    ref = response["content"]["application/json"]["schema"]["$ref"]
    assert {"access", "refresh"} <= set(schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"])


def test_schema_generates_without_warnings_and_validates(tmp_path: Path) -> None:
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))

    assert yaml.safe_load((tmp_path / "schema.yaml").read_text())["paths"]


def test_task_to_json_has_exactly_the_fields_of_task_output_serializer(make_task: Any) -> None:
    assert set(task_to_json(make_task())) == set(TaskOutputSerializer().fields)


# -- Swagger UI and ReDoc ------------------------------------------------------------------------------


class _Assets(HTMLParser):
    """Collects the URLs a page makes the browser fetch (scripts, styles, icons, images, frames)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if tag in {"script", "link", "img", "iframe", "source"} and values.get(name):
                self.urls.append(values[name])  # type: ignore[arg-type]


def _assets(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(("path", "bundle"), [("/api/docs/", "swagger-ui-bundle.js"), ("/api/redoc/", "redoc")])
def test_docs_pages_load_only_local_files(anon: APIClient, path: str, bundle: str) -> None:
    response = anon.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    urls = _assets(response.content.decode())
    assert any(bundle in url for url in urls), urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{path} loads {url} from another host"
        if url.startswith("/" + settings.STATIC_URL.lstrip("/")):
            assert finders.find(parts.path.removeprefix("/" + settings.STATIC_URL.lstrip("/"))), f"{url} is missing"
        else:  # Swagger UI's start-up script and ReDoc's bundle come from views of this server
            assert anon.get(url).status_code == 200, url


@pytest.mark.parametrize(("path", "script"), [("/api/docs/", "/api/docs/?script="), ("/api/redoc/", None)])
def test_docs_pages_point_at_the_local_schema(anon: APIClient, path: str, script: str | None) -> None:
    html = anon.get(path).content.decode()
    if script is not None:  # Swagger UI: the schema URL is in its start-up script, a file (no inline script)
        assert f'src="{script}"' in html
        html += anon.get(script).content.decode()

    assert '"/api/schema/"' in html
    assert "https://" not in html and "http://" not in html


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/", "/api/redoc/redoc.standalone.js"])
def test_docs_are_404_when_switched_off(anon: APIClient, settings: Any, path: str) -> None:
    settings.API_DOCS_ENABLED = False
    assert anon.get(path).status_code == 404
