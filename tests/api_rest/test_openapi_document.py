"""The committed OpenAPI document (docs/api/openapi.yaml) is what `manage.py spectacular` generates from
the views, byte for byte, and says what the server does: closed bodies, problem details on every
error, the headers sent and read, and the limits of tasks/ (docs/api/rest.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

from api_rest.schema import PROBLEM_MEDIA_TYPE
from api_rest.serializers import TaskOutputSerializer
from tasks.models import MAX_DESCRIPTION_LENGTH, MAX_TAG_LENGTH, MAX_TAGS, MAX_TAGS_SENT, MAX_TITLE_LENGTH
from tasks.pagination import MAX_LIMIT

COMMITTED = Path(settings.BASE_DIR) / "docs" / "api" / "openapi.yaml"
REGENERATE = (
    "DJANGO_DEBUG=1 .venv/bin/python manage.py spectacular --fail-on-warn --validate --file docs/api/openapi.yaml"
)


def generate(target: Path) -> str:
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(target))
    return target.read_text()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return yaml.safe_load(COMMITTED.read_text())


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for path in document["paths"].values() for op in path.values()}


def test_the_committed_document_is_the_generated_one(tmp_path: Path) -> None:
    assert COMMITTED.read_text() == generate(tmp_path / "openapi.yaml"), f"out of date: run `{REGENERATE}`"


def test_a_change_of_a_serializer_makes_the_document_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above catches a change of the code: here the description of the task's output."""
    monkeypatch.setattr(TaskOutputSerializer, "__doc__", "Changed.")

    assert COMMITTED.read_text() != generate(tmp_path / "openapi.yaml")


def test_contributing_names_the_regeneration_command() -> None:
    assert REGENERATE in (Path(settings.BASE_DIR) / "CONTRIBUTING.md").read_text()


def test_every_request_and_response_object_is_closed(document: dict[str, Any]) -> None:
    for name, component in document["components"]["schemas"].items():
        if component.get("type") == "object" and "properties" in component:
            assert component["additionalProperties"] is False, name


EXPECTED_STATUSES = {
    "v1_auth_token_create": {"200", "400", "401", "406", "411", "413", "415", "429", "503", "504"},
    "v1_auth_token_refresh_create": {"200", "400", "401", "406", "411", "413", "415", "429", "503", "504"},
    "v1_auth_token_revoke_create": {"204", "400", "401", "406", "411", "413", "415", "429", "503", "504"},
    "tasks_list": {"200", "400", "401", "406", "429", "503", "504"},
    "tasks_mine": {"200", "400", "401", "406", "429", "503", "504"},
    "tasks_create": {"201", "400", "401", "403", "406", "409", "411", "413", "415", "422", "429", "503", "504"},
    "tasks_retrieve": {"200", "304", "401", "404", "406", "429", "503", "504"},
    "tasks_partial_update": {"200", "400", "401", "403", "404", "406", "411", "412", "413", "415", "429", "503", "504"},
    "tasks_update": {"200", "400", "401", "403", "404", "406", "411", "412", "413", "415", "429", "503", "504"},
    "tasks_destroy": {"204", "401", "403", "404", "406", "412", "429", "503", "504"},
    "cache_stats": {"200", "401", "403", "406", "429", "503", "504"},
    # 404: reached through the WSGI server, which does not hold streams.
    "tasks_events": {"200", "400", "401", "404", "406", "429", "503", "504"},
}


def test_each_operation_lists_every_status_it_can_answer(document: dict[str, Any]) -> None:
    assert {name: set(op["responses"]) for name, op in _operations(document).items()} == EXPECTED_STATUSES


def test_every_error_is_the_problem_component_with_its_headers(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "request_id",
        "errors",
        "current_version",
        "retry_after",
    }
    assert problem["properties"]["errors"]["additionalProperties"]["items"] == {"type": "string"}
    for name, op in _operations(document).items():
        for status, response in op["responses"].items():
            headers = response.get("headers", {})
            assert headers["X-Request-ID"]["required"] is True, (name, status)
            assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(headers), (name, status)
            if int(status) < 400:
                continue
            assert set(response["content"]) == {PROBLEM_MEDIA_TYPE}, (name, status)
            assert response["content"][PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
            if status == "429":  # but `too_many_streams`, which lasts until one of the user's streams ends
                assert headers["Retry-After"].get("required", False) is (name != "tasks_events"), name
            if status == "401" and not name.startswith("v1_auth"):
                assert headers["WWW-Authenticate"]["required"] is True, name


def test_single_task_answers_declare_etag_location_and_replay(document: dict[str, Any]) -> None:
    ops = _operations(document)
    for name, status in [
        ("tasks_create", "201"),
        ("tasks_retrieve", "200"),
        ("tasks_retrieve", "304"),
        ("tasks_partial_update", "200"),
        ("tasks_update", "200"),
    ]:
        assert ops[name]["responses"][status]["headers"]["ETag"]["required"] is True, (name, status)
    created = ops["tasks_create"]["responses"]["201"]
    assert created["headers"]["Location"]["required"] is True
    assert created["headers"]["Idempotent-Replayed"]["schema"] == {"type": "string", "enum": ["true"]}
    assert {link["operationId"] for link in created["links"].values()} == {
        "tasks_retrieve",
        "tasks_partial_update",
        "tasks_update",
        "tasks_destroy",
    }


def test_request_headers_are_declared(document: dict[str, Any]) -> None:
    ops = _operations(document)

    def headers(name: str) -> dict[str, Any]:
        return {p["name"]: p for p in ops[name].get("parameters", []) if p["in"] == "header"}

    assert headers("tasks_partial_update").keys() == headers("tasks_update").keys() == {"If-Match"}
    key = headers("tasks_create")["Idempotency-Key"]["schema"]["pattern"]
    assert _matches(key, "k") and _matches(key, "a b") and _matches(key, "x" * 255)
    assert not _matches(key, "") and not _matches(key, "x" * 256) and not _matches(key, " k")
    assert "If-None-Match" in headers("tasks_retrieve")


def _matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def test_limits_are_the_servers(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    task_input = schemas["TaskInputRequest"]["properties"]
    title = task_input["title"]
    tag = task_input["tags"]["items"]

    # Trimmed, then 1-200 (title) and 1-50 (tag): exactly what the pattern accepts.
    for pattern, limit in [(title["pattern"], MAX_TITLE_LENGTH), (tag["pattern"], MAX_TAG_LENGTH)]:
        assert _matches(pattern, "x" * limit) and _matches(pattern, f"  {'x' * limit}  ")
        assert not _matches(pattern, "x" * (limit + 1))
        assert not _matches(pattern, "   ") and not _matches(pattern, "")
        assert _matches(pattern, " a b ")
        assert not _matches(pattern, "a\x00b")
    assert task_input["tags"]["maxItems"] == MAX_TAGS_SENT
    assert task_input["description"]["maxLength"] == MAX_DESCRIPTION_LENGTH
    assert schemas["TaskOutput"]["properties"]["tags"]["maxItems"] == MAX_TAGS
    assert schemas["TaskOutput"]["properties"]["tags"]["items"]["maxLength"] == MAX_TAG_LENGTH
    parameters = {p["name"]: p for p in _operations(document)["tasks_list"]["parameters"] if p["in"] == "query"}
    assert (parameters["limit"]["schema"]["minimum"], parameters["limit"]["schema"]["maximum"]) == (1, MAX_LIMIT)
    assert parameters["tag"]["schema"]["maxLength"] == MAX_TAG_LENGTH
    assert parameters["search"]["schema"]["maxLength"] == 200
    assert "ordering" in parameters["cursor"]["description"]
    assert set(parameters["completed"]["schema"]["enum"]) == {"true", "false", "1", "0"}
