"""The generated gRPC code is committed and must match a fresh generation from the proto
(`manage.py grpc_codegen --check`, run by the README's test command through this test)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from api_grpc import codegen


def test_the_committed_code_matches_the_proto(capsys: Any) -> None:
    call_command("grpc_codegen", "--check")

    assert "up to date" in capsys.readouterr().out


@pytest.fixture
def committed_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of api_grpc/generated that the command treats as the committed tree."""
    copy = tmp_path / "generated"
    shutil.copytree(codegen.GENERATED, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codegen, "GENERATED", copy)
    return copy


def test_the_copy_passes_as_it_is(committed_copy: Path) -> None:
    call_command("grpc_codegen", "--check")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda root: (root / "tasks/v1/tasks_pb2.py").write_text("# edited by hand\n"), "tasks_pb2.py"),
        (
            lambda root: (root / "tasks/v1/tasks_pb2_grpc.py").write_text(
                (root / "tasks/v1/tasks_pb2_grpc.py").read_text() + "\n# a stray line\n"
            ),
            "tasks_pb2_grpc.py",
        ),
        (lambda root: (root / "tasks/v1/tasks_pb2.pyi").unlink(), "tasks_pb2.pyi"),
        (lambda root: (root / "tasks/v1/old_pb2.py").write_text("# left over\n"), "old_pb2.py"),
    ],
    ids=["edited", "appended", "missing", "extra"],
)
def test_drift_fails_the_check(committed_copy: Path, change: Any, named: str) -> None:
    change(committed_copy)

    with pytest.raises(CommandError) as info:
        call_command("grpc_codegen", "--check")

    assert named in str(info.value)
    assert "manage.py grpc_codegen" in str(info.value)


def test_regenerating_repairs_drift(committed_copy: Path) -> None:
    (committed_copy / "tasks/v1/tasks_pb2.py").write_text("# edited by hand\n")
    (committed_copy / "tasks/v1/old_pb2.py").write_text("# left over\n")

    call_command("grpc_codegen")

    call_command("grpc_codegen", "--check")
    assert not (committed_copy / "tasks/v1/old_pb2.py").exists()
    assert (
        "from api_grpc.generated.tasks.v1 import tasks_pb2"
        in (committed_copy / "tasks/v1/tasks_pb2_grpc.py").read_text()
    )


def test_the_check_leaves_the_committed_tree_alone() -> None:
    before = {p: p.read_bytes() for p in codegen.GENERATED.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    call_command("grpc_codegen", "--check")

    after = {p: p.read_bytes() for p in codegen.GENERATED.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert after == before
