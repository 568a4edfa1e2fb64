"""The task list filters, one FilterSet applied inside `task_list` for every protocol.

Adapters pass a plain mapping of strings (`{"status": "todo", "tag": "home"}`); invalid values
become InvalidInput with one message per field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Func, Q, QuerySet, TextField
from django_filters.fields import IsoDateTimeField

from core.errors import InvalidInput
from tasks.models import Priority, Status, Task, in_utc_range
from tasks.sqlite import SQLITE_CASEFOLD

_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


class Casefold(Func):
    """SQLite only: Python's `str.casefold`, registered on every SQLite connection by tasks.apps."""

    function = SQLITE_CASEFOLD
    output_field = TextField()


class _UtcDateTimeField(IsoDateTimeField):
    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is not None and not in_utc_range(parsed):
            raise ValidationError("The date and time is out of range.", code="invalid")
        return parsed  # type: ignore[no-any-return]


class _UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
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
    due_before = _UtcDateTimeFilter(field_name="due_date", lookup_expr="lt")
    due_after = _UtcDateTimeFilter(field_name="due_date", lookup_expr="gt")
    search = django_filters.CharFilter(method="filter_search", max_length=200)

    class Meta:
        model = Task
        fields: list[str] = []

    def filter_tag(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        tag = value.strip().lower()
        return queryset.filter(tags__has_tag=tag) if tag else queryset

    def filter_search(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        """Case-insensitive substring of title or description. On PostgreSQL the trigram indexes of
        migration 0002 serve it; on SQLite it is a LIKE scan."""
        text = value.strip()
        if not text:
            return queryset
        if connection.vendor == "sqlite":
            # SQLite's LIKE and lower() fold ASCII only ("CAFÉ" would miss "Café"): compare casefolded text.
            folded = text.casefold()
            return queryset.alias(title_folded=Casefold("title"), description_folded=Casefold("description")).filter(
                Q(title_folded__contains=folded) | Q(description_folded__contains=folded)
            )
        return queryset.filter(Q(title__icontains=text) | Q(description__icontains=text))


FILTER_NAMES = frozenset(TaskFilter.base_filters)


def normalize_filters(filters: dict[str, Any] | None) -> dict[str, str]:
    """Drop empty values and reject unknown filter names (typos must not silently list everything)."""
    filters = {name: value for name, value in (filters or {}).items() if value not in (None, "")}
    if unknown := sorted(set(filters) - FILTER_NAMES):
        raise InvalidInput.for_fields({name: ["Unknown filter."] for name in unknown})
    return {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in filters.items()}
