"""Cursor (keyset) pagination over a task ordering, the same for every protocol.

A cursor is an opaque base64url token naming the ordering, a direction and the position (the
ordering column's value and the id of the edge row). Pages are stable under inserts and deletes
and cost one indexed query whatever the depth, unlike OFFSET.

Rows with no due date come last in both directions of the `due_date` ordering.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet

from core.errors import InvalidInput
from tasks.models import Task, aware_utc

ORDERINGS = ("created_at", "-created_at", "due_date", "-due_date", "priority", "-priority")
DEFAULT_ORDERING = "-created_at"
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
_NULLABLE = {"due_date"}


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Task]
    next_cursor: str | None
    previous_cursor: str | None


@dataclass(frozen=True, slots=True)
class _Position:
    forward: bool
    value: Any
    id: str


def check_ordering(ordering: str | None) -> str:
    """None (absent) is the default ordering; anything else must be one of ORDERINGS ("" too)."""
    ordering = DEFAULT_ORDERING if ordering is None else ordering
    if ordering not in ORDERINGS:
        raise InvalidInput.for_fields({"ordering": [f"Must be one of: {', '.join(ORDERINGS)}."]})
    return ordering


_LIMIT_MESSAGE = f"Must be a whole number from 1 to {MAX_LIMIT}."


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput.for_fields({"limit": [_LIMIT_MESSAGE]})
    return limit


def check_cursor(cursor: str | None, ordering: str, *, forward_only: bool = False) -> str | None:
    """None (absent) is the first page; anything else must be a cursor of this ordering ("" too).
    Checked before the page cache is asked, so a bad cursor is refused whatever the cache holds.

    `forward_only`: the caller pages forward only (GraphQL's `after`, gRPC's page token), so a cursor
    of a `previous` link, which lists the tasks before its position, is refused too."""
    if cursor is not None and not _decode(cursor, ordering).forward and forward_only:
        raise InvalidInput.for_fields({"cursor": ["Must be the cursor of a next page: this list pages forward only."]})
    return cursor


# More digits than MAX_LIMIT's, past leading zeros, are out of range whatever they say. Counted before
# int(), which refuses text of over 4,300 digits (sys.int_max_str_digits) with a ValueError.
_LIMIT_DIGITS = len(str(MAX_LIMIT))


def parse_limit(text: str | None) -> int | None:
    """A page size given as text (a query parameter): digits only; `check_limit` bounds it."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput.for_fields({"limit": [_LIMIT_MESSAGE]})
    digits = text.lstrip("0") or "0"
    if len(digits) > _LIMIT_DIGITS:
        raise InvalidInput.for_fields({"limit": [_LIMIT_MESSAGE]})
    return int(digits)


def paginate(queryset: QuerySet[Task], *, ordering: str, limit: int, cursor: str | None) -> Page:
    """One page of `queryset` in `ordering` after (or before) `cursor`: one query of limit + 1 rows."""
    field = ordering.lstrip("-")
    descending = ordering.startswith("-")
    position = _decode(cursor, ordering) if cursor is not None else None
    forward = position is None or position.forward

    # Walking backwards reverses the order (NULLs then come first) and the page is flipped after.
    walk_descending = descending if forward else not descending
    nulls = {"nulls_last": True} if forward else {"nulls_first": True}
    order_by = [
        (F(field).desc(**nulls) if walk_descending else F(field).asc(**nulls))
        if field in _NULLABLE
        else (F(field).desc() if walk_descending else F(field).asc()),
        F("id").desc() if walk_descending else F("id").asc(),
    ]
    if position is not None:
        queryset = queryset.filter(_beyond(field, walk_descending, forward, position))
    rows = list(queryset.order_by(*order_by)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()

    if forward:
        next_cursor = _encode(ordering, True, rows[-1], field) if more else None
        previous_cursor = _encode(ordering, False, rows[0], field) if position is not None and rows else None
    else:
        previous_cursor = _encode(ordering, False, rows[0], field) if more else None
        next_cursor = _encode(ordering, True, rows[-1], field) if rows else None
    return Page(items=rows, next_cursor=next_cursor, previous_cursor=previous_cursor)


def cursor_after(task: Task, ordering: str) -> str:
    """The cursor of the page that starts right after `task` in `ordering` (a Relay edge cursor)."""
    return _encode(ordering, True, task, ordering.lstrip("-"))


def _beyond(field: str, descending: bool, forward: bool, position: _Position) -> Q:
    """Rows strictly after `position` in the walking order."""
    id_after = Q(id__lt=position.id) if descending else Q(id__gt=position.id)
    nullable = field in _NULLABLE
    if position.value is None:
        # In the NULL group: last when walking forward, first when walking backward.
        in_group = Q(**{f"{field}__isnull": True}) & id_after
        return in_group if forward else in_group | Q(**{f"{field}__isnull": False})
    op = "lt" if descending else "gt"
    after = Q(**{f"{field}__{op}": position.value}) | (Q(**{field: position.value}) & id_after)
    if nullable and forward:
        # The NULL group follows: no single range of the column holds these rows.
        return after | Q(**{f"{field}__isnull": True})
    # The same rows, plus a bound the planner takes as the start of the index range: without it the
    # OR is only a filter, and a deep page reads every row of the owner before the position.
    bound = "lte" if descending else "gte"
    return Q(**{f"{field}__{bound}": position.value}) & after


def _encode(ordering: str, forward: bool, task: Task, field: str) -> str:
    value = getattr(task, field)
    if isinstance(value, datetime):
        value = value.isoformat()
    payload = {"o": ordering, "f": forward, "v": value, "i": str(task.pk)}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


# The longest cursor `_encode` makes is ~170 characters (an ISO datetime and a UUID); a longer one
# was not made here, and is refused before it is decoded.
MAX_CURSOR_LENGTH = 512


def _decode(cursor: str, ordering: str) -> _Position:
    invalid = InvalidInput.for_fields({"cursor": ["The cursor is not valid for this list."]})
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(payload, dict) or payload.get("o") != ordering or not isinstance(payload.get("f"), bool):
            raise invalid
        value = payload["v"]
        field = ordering.lstrip("-")
        if value is None and field not in _NULLABLE:
            raise invalid  # only the due date has a NULL group: no cursor made here holds null for another
        if value is not None:
            if field == "priority":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise invalid
            else:
                # Only our own spelling, then in UTC: a crafted offset (+20:00) never reaches the SQL.
                value = aware_utc(datetime.fromisoformat(value))
        task_id = Task._meta.pk.to_python(payload["i"])
    except InvalidInput:
        raise
    except (ValueError, TypeError, KeyError, binascii.Error, ValidationError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the interpreter's stack (`[[[[...]]]]`).
        raise invalid from exc
    return _Position(forward=payload["f"], value=value, id=str(task_id))
