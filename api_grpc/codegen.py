"""Generate the Python code of api_grpc/protos with grpcio-tools (`manage.py grpc_codegen`).

protoc names modules after the proto path, so `tasks/v1/tasks.proto` would import as `tasks.v1`,
which is our Django app `tasks`. The generated `*_pb2_grpc.py` import is rewritten to the package
the code lives in, `api_grpc.generated.tasks.v1`.
"""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent / "protos"
GENERATED = Path(__file__).resolve().parent / "generated"
PACKAGE = "api_grpc.generated"
PROTOS = ("tasks/v1/tasks.proto",)


def generate(out_dir: Path) -> None:
    """Write the generated modules (with __init__.py files and .pyi stubs) below out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            *PROTOS,
        ]
    )
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status}")
    for path in out_dir.rglob("*.py*"):
        text = path.read_text()
        fixed = re.sub(r"^from (tasks\.v1) import", rf"from {PACKAGE}.\1 import", text, flags=re.M)
        if fixed != text:
            path.write_text(fixed)
    for directory in [out_dir, *[p for p in out_dir.rglob("*") if p.is_dir()]]:
        if directory.name != "__pycache__":
            (directory / "__init__.py").touch()


def differences(out_dir: Path) -> list[str]:
    """Files that differ between a fresh generation in out_dir and the committed GENERATED tree."""

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }

    fresh, committed = files(out_dir), files(GENERATED)
    return sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))


def regenerate() -> None:
    shutil.rmtree(GENERATED, ignore_errors=True)
    generate(GENERATED)
