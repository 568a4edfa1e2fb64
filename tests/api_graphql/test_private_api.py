"""The GraphQL adapter uses only the public API of strawberry and graphql-core: a private attribute
(`ExecutionContext._provided_operation_name`) or a private module changes without notice in any
release. The source is read, not run: every `x._name` whose `x` is not the module's own `self` or
`cls`, and every import from a module or of a name that starts with one underscore, is reported."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

PACKAGE = Path(settings.BASE_DIR) / "api_graphql"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith("api_graphql"):
            names = [alias.name for alias in node.names]
            if any(_private(part) for part in node.module.split(".")) or any(_private(name) for name in names):
                found.append(f"line {node.lineno}: from {node.module} import {', '.join(names)}")
    return found


def test_the_check_finds_a_private_attribute_and_a_private_import() -> None:
    source = "from strawberry.schema._graphql_core import x\nname = context._provided_operation_name\nself._own = 1\n"

    assert private_uses(source) == [
        "line 1: from strawberry.schema._graphql_core import x",
        "line 2: context._provided_operation_name",
    ]


def test_the_graphql_adapter_uses_no_private_api_of_its_libraries() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 5

    found = {str(path.relative_to(PACKAGE)): uses for path in modules if (uses := private_uses(path.read_text()))}

    assert found == {}
