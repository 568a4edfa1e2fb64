"""The task list filters, one FilterSet applied inside `task_list` for every protocol.

Adapters pass a plain mapping of strings (`{"status": "todo", "tag": "home"}`); invalid values
become InvalidInput with one message per field. The rules of the parameters themselves
(docs/domain.md, "List: filters"): an unknown name, a name given twice, and an empty value are
invalid input, never ignored nor guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.db import connection
from django.db.models import F, Func, JSONField, Q, QuerySet, TextField

from core.errors import InvalidInput
from tasks.models import Priority, Status, Task, parse_aware_datetime, text_problem
from tasks.pagination import due_sort_key
from tasks.sqlite import SQLITE_CASEFOLD

_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


class Casefold(Func):
    """SQLite only: Python's `str.casefold`, registered on every SQLite connection by tasks.apps."""

    function = SQLITE_CASEFOLD
    output_field = TextField()


# Between title and description in the text the owner's search index covers (migration 0004): the
# control character U+001F, which no casing maps to. A search for text without it cannot match across
# the join, so "title || U+001F || description contains it" is exactly "title or description contains it".
SEARCH_SEPARATOR = "\x1f"


class SearchText(Func):
    """PostgreSQL: `title || U+001F || description`. Its UPPER() is the expression of the owner-leading
    trigram GiST index of migration 0004, so an owner's search reads one index."""

    template = "(%(expressions)s)"
    arg_joiner = f" || CHR({ord(SEARCH_SEPARATOR)}) || "
    output_field = TextField()

    def __init__(self) -> None:
        super().__init__(F("title"), F("description"))


class OwnerTags(Func):
    """PostgreSQL: `{"<owner id>": tags}` (`tasks_owner_tags`, migration 0005), the expression of the
    GIN index whose keys are an owner and a tag together, so an owner's tag filter reads one index."""

    function = "tasks_owner_tags"
    output_field = JSONField()

    def __init__(self) -> None:
        super().__init__(F("owner_id"), F("tags"))


class _UtcDateTimeField(forms.Field):
    """A time with an offset, in UTC: the rule of every time a client sends (`parse_aware_datetime`).
    A naive time is refused, as in a write; UTC keeps offsets PostgreSQL cannot store out of the SQL."""

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        return parse_aware_datetime(value)


class _UtcDateTimeFilter(django_filters.Filter):
    field_class = _UtcDateTimeField


class TaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices)
    priority = django_filters.TypedChoiceFilter(
        choices=[(p.label, p.label) for p in Priority], coerce=lambda name: Priority.from_name(name)
    )
    completed = django_filters.TypedChoiceFilter(
        choices=[(name, name) for name in _BOOLEANS], coerce=lambda name: _BOOLEANS[name]
    )
    tag = django_filters.CharFilter(method="filter_tag", max_length=50)
    due_before = _UtcDateTimeFilter(method="filter_due")
    due_after = _UtcDateTimeFilter(method="filter_due")
    search = django_filters.CharFilter(method="filter_search", max_length=200)

    class Meta:
        model = Task
        fields: list[str] = []

    def __init__(self, *args: Any, owner_id: int | None = None, ordering: str | None = None, **kwargs: Any) -> None:
        """`owner_id`: the one owner of every row of the queryset (every list but a manager's list of
        everybody, as `tasks.selectors` decides it), so the tag filter and the search may read the
        owner's indexes. `ordering`: the list's, so the due-date filters may bound its index."""
        super().__init__(*args, **kwargs)
        self.owner_id = owner_id
        self.ordering = ordering or ""

    # django-filters calls a method filter only with a value: the form field strips blanks, and an
    # empty value skips the filter. A blank tag never gets here (`normalize_filters` refuses it); a
    # blank search does not filter, since every text contains it.

    def filter_tag(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        """The list contains the tag. On PostgreSQL, one owner's filter asks for the owner and the tag
        together (`OwnerTags`), which the GIN index of migration 0005 finds among the owner's rows
        only; a list of everybody asks for the tag alone (the GIN index of migration 0003)."""
        tag = value.lower()
        if self.owner_id is not None and connection.vendor == "postgresql":
            return queryset.alias(owner_tags=OwnerTags()).filter(owner_tags__contains={str(self.owner_id): [tag]})
        return queryset.filter(tags__has_tag=tag)

    def filter_due(self, queryset: QuerySet[Task], name: str, value: datetime) -> QuerySet[Task]:
        """`due_before`: due strictly before the time; `due_after`: strictly after (a task without a
        due date is neither). In a due-date ordering on PostgreSQL, the same bound is also set on the
        ordering's sort key (`tasks.pagination.due_sort_key`), whose index the page is read from: the
        filter on the column alone was checked row by row along that index, and a page of tasks due
        late read every earlier task first (managers': the whole table's). For the rows the filter
        keeps, the key is the due date, so the rows are the same."""
        op = "lt" if name == "due_before" else "gt"
        queryset = queryset.filter(**{f"due_date__{op}": value})
        if (key := due_sort_key(self.ordering, connection.vendor)) is not None:
            queryset = queryset.alias(due_key=key).filter(**{f"due_key__{op}": value})
        return queryset

    def filter_search(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        """Case-insensitive substring of title or description (on SQLite, a scan with casefolded text).

        On PostgreSQL, one owner's search is a LIKE on `SearchText`, read through the GiST index of
        migration 0004: it finds the owner's matches among the owner's rows only, so its cost does
        not grow with the table (the GIN indexes of 0003 intersect the owner's rows with each
        trigram's rows of every owner). A list of everybody keeps one LIKE per column, served by
        those GIN indexes: without an owner, the GiST index would be read whole.
        """
        text = value
        if connection.vendor == "sqlite":
            # SQLite's LIKE and lower() fold ASCII only ("CAFÉ" would miss "Café"): compare casefolded text.
            folded = text.casefold()
            return queryset.alias(title_folded=Casefold("title"), description_folded=Casefold("description")).filter(
                Q(title_folded__contains=folded) | Q(description_folded__contains=folded)
            )
        per_column = Q(title__icontains=text) | Q(description__icontains=text)
        if self.owner_id is None:
            return queryset.filter(per_column)
        matches = queryset.alias(search_text=SearchText()).filter(search_text__icontains=text)
        if SEARCH_SEPARATOR in text:
            # Such a text could match across the join: the index finds candidates, each column decides.
            matches = matches.filter(per_column)
        return matches


FILTER_NAMES = frozenset(TaskFilter.base_filters)


# Blank text is a value of its own only for `search`: every text contains it, so it matches every task.
BLANK_ALLOWED = frozenset({"search"})


def single_values(params: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """One value per parameter name, from a transport that can repeat a name (an HTTP query string).

    A name given more than once is invalid input: which value counts would be a guess (Django's
    QueryDict keeps the last, other stacks the first).
    """
    values: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for name, given in params.items():
        given = list(given)
        if len(given) != 1:
            repeated[name] = ["Give this parameter once."]
        else:
            values[name] = given[0]
    if repeated:
        raise InvalidInput.for_fields(repeated)
    return values


def normalize_filters(filters: Mapping[str, Any] | None) -> dict[str, str]:
    """The filters as text: absent ones (None) dropped; unknown names refused (a misspelt filter must
    not silently list everything); empty and blank values refused except for `search` (an empty
    value is not an absent filter: `status=` names no status)."""
    filters = {name: value for name, value in (filters or {}).items() if value is not None}
    if unknown := sorted(set(filters) - FILTER_NAMES):
        raise InvalidInput.for_fields({name: ["Unknown filter."] for name in unknown})
    text = {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in filters.items()}
    if blank := sorted(name for name, value in text.items() if not value.strip() and name not in BLANK_ALLOWED):
        raise InvalidInput.for_fields({name: ["This filter may not be empty."] for name in blank})
    # Before any query: a lone surrogate cannot be sent to the database (tasks.models.text_problem).
    if unfit := {name: [problem] for name, value in sorted(text.items()) if (problem := text_problem(value))}:
        raise InvalidInput.for_fields(unfit)
    return text
