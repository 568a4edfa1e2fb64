"""SQL functions that SQLite lacks, registered on each new SQLite connection (tasks.apps)."""

from __future__ import annotations

from typing import Any

SQLITE_CASEFOLD = "TASKHUB_CASEFOLD"


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()


def register_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_CASEFOLD, 1, _casefold, deterministic=True)
