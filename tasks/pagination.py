"""Cursor (keyset) pagination over a task ordering, the same for every protocol.

A cursor is an opaque base64url token naming the ordering, a direction and the position (the
ordering column's value and the id of the edge row). Pages are stable under inserts and deletes
and cost one indexed query whatever the depth, unlike OFFSET.

Rows with no due date come last in both directions of the `due_date` ordering. On PostgreSQL they
are sorted as a date past every other (`_NULL_DUE`), so that the rows after any position, the NULL
group included, are one range of an index (docs/architecture.md, "Indexes").
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import BooleanField, DateTimeField, F, Field, Func, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from core.errors import InvalidInput
from tasks.models import Task, aware_utc

ORDERINGS = ("created_at", "-created_at", "due_date", "-due_date", "priority", "-priority")
DEFAULT_ORDERING = "-created_at"
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
_NULLABLE = {"due_date"}
# PostgreSQL: what a missing due date sorts as, by the ordering's direction: after every date in
# `due_date`, before every date in `-due_date`, so last in both, as the NULLS LAST of SQLite's query.
# No due date can be either (`aware_utc` keeps every date within years 1 to 9999). The indexes of
# migration 0006 are built on these very expressions.
_NULL_DUE = {False: "'infinity'::timestamptz", True: "'-infinity'::timestamptz"}
_SORT_KEY = "sort_key"


def due_sort_key(ordering: str, vendor: str) -> Coalesce | None:
    """What PostgreSQL sorts a due-date ordering by, `COALESCE(due_date, ±infinity)` (`_NULL_DUE`),
    the expression of migration 0006's indexes; None for any other ordering or database."""
    if ordering.lstrip("-") not in _NULLABLE or vendor != "postgresql":
        return None
    return Coalesce(F("due_date"), _null_edge(ordering))


def _null_edge(ordering: str) -> RawSQL:
    return RawSQL(_NULL_DUE[ordering.startswith("-")], (), output_field=DateTimeField())


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


def paginate(
    queryset: QuerySet[Task], *, ordering: str, limit: int, cursor: str | None, owner_id: int | None = None
) -> Page:
    """One page of `queryset` in `ordering` after (or before) `cursor`: one query of limit + 1 rows.
    `owner_id`: the one owner of every row of `queryset`, if it has one (see `_beyond`)."""
    field = ordering.lstrip("-")
    descending = ordering.startswith("-")
    position = _decode(cursor, ordering) if cursor is not None else None
    forward = position is None or position.forward

    # Walking backwards reverses the order (NULLs then come first) and the page is flipped after.
    walk_descending = descending if forward else not descending
    nullable = field in _NULLABLE
    null_edge = None
    vendor = connections[queryset.db].vendor
    postgresql = vendor == "postgresql"
    if (key := due_sort_key(ordering, vendor)) is not None:
        # The NULL group as a date past the others: the SQL orders and compares one value, and a
        # page after any position is one range of the index on that value (a NULL test ORed to the
        # range would make the planner read every row of the owner past the position, then sort).
        null_edge = _null_edge(ordering)
        queryset = queryset.alias(**{_SORT_KEY: key})
        field, nullable = _SORT_KEY, False
    nulls = {"nulls_last": True} if forward else {"nulls_first": True}
    order_by = [
        (F(field).desc(**nulls) if walk_descending else F(field).asc(**nulls))
        if nullable
        else (F(field).desc() if walk_descending else F(field).asc()),
        F("id").desc() if walk_descending else F("id").asc(),
    ]
    if position is not None:
        row_lead = None if not postgresql else () if owner_id is None else (owner_id,)
        queryset = queryset.filter(_beyond(field, nullable, walk_descending, forward, position, null_edge, row_lead))
    rows = list(queryset.order_by(*order_by)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()

    field = ordering.lstrip("-")  # a cursor holds the task's own value (null for no due date)
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


class _Row(Func):
    """A row value, `(a, b)`: two rows compare element by element, the order of an index on the same
    columns, so the planner starts the index range at the position itself."""

    function = ""
    template = "(%(expressions)s)"
    output_field = Field()  # a row is no one type; it is only compared, never read


def _beyond(
    field: str,
    nullable: bool,
    descending: bool,
    forward: bool,
    position: _Position,
    null_edge: RawSQL | None,
    row_lead: tuple[int, ...] | None,
) -> Q:
    """Rows strictly after `position` in the walking order. `nullable`: `field` has a NULL group, last
    when walking forward (SQLite's due date). `null_edge`: what `field` holds for the NULL group
    instead (PostgreSQL's, `paginate`). `row_lead`: compare as a row (PostgreSQL), led by the owner's
    id when the list has one owner (`(owner_id,)`), else by nothing (`()`)."""
    id_after = Q(id__lt=position.id) if descending else Q(id__gt=position.id)
    if position.value is None:
        if null_edge is None:
            # In the NULL group: last when walking forward, first when walking backward.
            in_group = Q(**{f"{field}__isnull": True}) & id_after
            return in_group if forward else in_group | Q(**{f"{field}__isnull": False})
        if forward:
            # The rest of the edge's run, the last of the walk: one range of the index.
            return Q(**{field: null_edge}) & id_after
        position = _Position(forward=False, value=null_edge, id=position.id)
    if row_lead is not None:
        # `(field, id) > (value, id)`: the index range starts at the position itself, also inside a
        # long run of one value (a priority, the NULL group walked backward). The planner estimates a
        # row comparison by its first element alone: as `priority > 3`, inside the last run of the
        # walk, no rows, and for one owner's list it then took managers' index (no owner) and read
        # the run of every owner (27 ms a priority page at 1M tasks, against 0.1 ms). For one
        # owner the row is led by the owner, `(owner_id, field, id) > (<owner>, value, id)`: the
        # same rows, since every row has that owner, and only an index led by the owner can start
        # its range there.
        columns = [F("owner_id")] if row_lead else []
        value = position.value if isinstance(position.value, RawSQL) else Value(position.value)
        row = _Row(*(Value(lead) for lead in row_lead), value, Value(UUID(position.id)))
        return Q(Func(_Row(*columns, F(field), F("id")), row, arg_joiner=" < " if descending else " > ",
                      template="%(expressions)s", output_field=BooleanField()))  # fmt: skip
    op = "lt" if descending else "gt"
    after = Q(**{f"{field}__{op}": position.value}) | (Q(**{field: position.value}) & id_after)
    if nullable and forward:
        # The NULL group follows (SQLite only): no single range of the column holds these rows.
        return after | Q(**{f"{field}__isnull": True})
    # SQLite: the same rows, plus a bound the planner takes as the start of the index range (without
    # it the OR is only a filter); inside a run of one value the range starts at the run.
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
