"""JSON: the canonical spelling of a value (cache keys, fingerprints, stored snapshots), and the bounded
parse of request bodies."""

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


# The deepest nesting of arrays and objects a request body may have. taskhub's inputs need 3 levels
# (GraphQL variables: the request, an input object, a list of tags); Python's recursive JSON decoder
# and the code after it (DRF's and strawberry's input coercion) would fail with RecursionError, a 500,
# on a body nested a few thousand levels deep.
MAX_JSON_DEPTH = 64


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members, refusing a name given twice: which value counts would be a guess (Python's
    decoder keeps the last, other parsers the first), as for a repeated list parameter
    (docs/domain.md, "List: filters")."""
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise json.JSONDecodeError(f"Duplicate key {name!r}.", "", 0)
        members[name] = value
    return members


def loads_bounded(data: str | bytes, max_depth: int = MAX_JSON_DEPTH, **options: Any) -> Any:
    """`json.loads(data, **options)`, refusing documents nested deeper than `max_depth` and objects
    that name a member twice (`{"title": "a", "title": "b"}`) with JSONDecodeError (a ValueError,
    which each protocol already answers as a body that is not JSON). Every other ValueError of the
    decoder (an integer of more than 4,300 digits) is a JSONDecodeError too."""
    text = data.decode() if isinstance(data, bytes) else data
    options.setdefault("object_pairs_hook", _unique_keys)
    try:
        value = json.loads(text, **options)
    except RecursionError:
        raise json.JSONDecodeError(f"Nested deeper than {max_depth} levels.", "", 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer longer than int() takes (4,300 digits), a parse_constant's refusal
        raise json.JSONDecodeError(str(exc), "", 0) from None
    # Cheap first: fewer brackets than the limit cannot nest deeper than it (the count is done in C).
    if text.count("[") + text.count("{") > max_depth and _depth(value) > max_depth:
        raise json.JSONDecodeError(f"Nested deeper than {max_depth} levels.", "", 0)
    return value


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a decoded JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest
