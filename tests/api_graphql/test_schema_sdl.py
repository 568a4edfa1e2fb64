"""The committed SDL (api_graphql/schema.graphql) is the schema: `manage.py graphql_schema --check`
passes, and fails when the file drifts; without --check the command writes the file."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from api_graphql.management.commands import graphql_schema as command
from api_graphql.schema import current_schema, schema

COMMITTED = command.SDL_PATH


def test_the_check_passes_on_the_committed_file() -> None:
    out = StringIO()

    call_command("graphql_schema", "--check", stdout=out)

    assert "up to date" in out.getvalue()


def test_the_committed_file_is_the_schema() -> None:
    assert COMMITTED.read_text() == schema.as_str().rstrip() + "\n"


@pytest.mark.parametrize(
    "change",
    [
        lambda sdl: sdl.replace("  version: Int!\n", ""),  # a field dropped
        lambda sdl: sdl.replace("HIGH", "URGENT"),  # an enum value renamed
        lambda sdl: sdl + "\ntype Extra {\n  id: ID!\n}\n",  # a type added
        lambda sdl: sdl.rstrip("\n"),  # only the final newline
    ],
    ids=["field-dropped", "enum-renamed", "type-added", "newline"],
)
def test_the_check_fails_when_the_file_drifts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: Any) -> None:
    drifted = tmp_path / "schema.graphql"
    drifted.write_text(change(COMMITTED.read_text()))
    assert drifted.read_text() != COMMITTED.read_text()
    monkeypatch.setattr(command, "SDL_PATH", drifted)

    with pytest.raises(CommandError, match="out of date"):
        call_command("graphql_schema", "--check", stdout=StringIO())


def test_the_check_fails_when_the_file_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(command, "SDL_PATH", tmp_path / "missing.graphql")

    with pytest.raises(CommandError):
        call_command("graphql_schema", "--check", stdout=StringIO())


def test_the_command_writes_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    target.write_text("stale")
    monkeypatch.setattr(command, "SDL_PATH", target)

    call_command("graphql_schema", stdout=StringIO())

    assert target.read_text() == COMMITTED.read_text()
    call_command("graphql_schema", "--check", stdout=StringIO())  # and what it wrote passes the check


def test_the_served_schema_has_the_exported_types(settings: Any) -> None:
    # The served schemas differ from the exported one only in their safety switches, never in types.
    settings.GRAPHQL_INTROSPECTION_ENABLED = False
    settings.GRAPHQL_FIELD_SUGGESTIONS_ENABLED = False

    assert current_schema().as_str() == schema.as_str()


@pytest.mark.parametrize(
    "fragment",
    [
        "task(id: ID!): Task",
        "tasks(filters: TaskFilterInput = null, ordering: TaskOrdering! = CREATED_AT_DESC, first: Int = null, "
        "after: String = null): TaskConnection!",
        "searchTasks(query: String!, first: Int = null, after: String = null): TaskConnection!",
        "me: Me!",
        "createTask(input: TaskCreateInput!, idempotencyKey: String = null): Task!",
        "updateTask(id: ID!, input: TaskPatchInput!, expectedVersion: Int = null): Task!",
        "deleteTask(id: ID!, expectedVersion: Int = null): Boolean!",
        "dueDate: DateTime",
        "IN_PROGRESS",
    ],
)
def test_the_surface_of_design_section_4(fragment: str) -> None:
    assert fragment in COMMITTED.read_text()
