"""Canonical JSON: one spelling per value, for cache keys, fingerprints and stored snapshots."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID


def _default(value: Any) -> str:
    # Full precision: DjangoJSONEncoder would cut datetimes to milliseconds, and a replay must
    # return exactly what the first response did.
    if isinstance(value, datetime):  # the same instant spells the same whatever its offset
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces, full-precision UTC times and UUIDs as strings."""
    return json.dumps(value, default=_default, sort_keys=True, separators=(",", ":"))
