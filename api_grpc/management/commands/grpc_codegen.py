"""`manage.py grpc_codegen [--check]`: regenerate api_grpc/generated, or fail when it has drifted."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api_grpc import codegen


class Command(BaseCommand):
    help = "Generate the gRPC Python code from api_grpc/protos; --check fails if the committed code differs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Fail if api_grpc/generated is out of date.")

    def handle(self, *args: Any, check: bool, **options: Any) -> None:
        if not check:
            codegen.regenerate()
            self.stdout.write(f"Wrote {codegen.GENERATED}.")
            return
        with tempfile.TemporaryDirectory() as tmp:
            codegen.generate(Path(tmp))
            drift = codegen.differences(Path(tmp))
        if drift:
            raise CommandError(f"api_grpc/generated is out of date ({', '.join(drift)}): run `manage.py grpc_codegen`.")
        self.stdout.write("The generated gRPC code is up to date.")
