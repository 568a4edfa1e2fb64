"""`manage.py graphql_schema [--check]`: write the SDL to api_graphql/schema.graphql, or fail on drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api_graphql.schema import schema

SDL_PATH = Path(__file__).resolve().parents[2] / "schema.graphql"


def current_sdl() -> str:
    return schema.as_str().rstrip() + "\n"


class Command(BaseCommand):
    help = "Export the GraphQL schema (SDL) to api_graphql/schema.graphql; --check fails if it differs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Fail if the committed SDL is out of date.")

    def handle(self, *args: Any, check: bool, **options: Any) -> None:
        sdl = current_sdl()
        if check:
            committed = SDL_PATH.read_text() if SDL_PATH.exists() else ""
            if committed != sdl:
                raise CommandError(f"{SDL_PATH} is out of date: run `manage.py graphql_schema` and commit it.")
            self.stdout.write("The committed GraphQL schema is up to date.")
            return
        SDL_PATH.write_text(sdl)
        self.stdout.write(f"Wrote {SDL_PATH}.")
