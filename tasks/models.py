"""The Task model (docs/domain.md) and the idempotency records of task creation."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Lookup, Q
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone
from django.utils.dateparse import parse_datetime

MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
# Raw tags a request may send before duplicates are dropped; bounds the work of one request.
MAX_TAGS_SENT = 100
# PostgreSQL text cannot hold NUL, so no text of a task may (docs/domain.md, "Rules"); the message is
# Django's and DRF's own for the same rule.
NUL_MESSAGE = "Null characters are not allowed."
NAIVE_MESSAGE = "The date and time must include a time zone offset."
NOT_A_TIME_MESSAGE = "Must be a date and time with a time zone offset, e.g. 2030-01-31T17:00:00Z."
OUT_OF_RANGE_MESSAGE = "The date and time is out of range."
# A lone UTF-16 surrogate (U+D800 to U+DFFF) is a legal JSON escape ("\ud800") but no character: no
# UTF-8 encoder, so no database, accepts it. JSON bodies carry them (REST's and GraphQL's); gRPC's
# strings are UTF-8, and a URL's invalid bytes are decoded as U+FFFD. The message is DRF's own.
_SURROGATES = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be a task's text or a filter's, or None: a NUL or a lone surrogate."""
    if "\x00" in value:
        return NUL_MESSAGE
    if surrogate := _SURROGATES.search(value):
        return f"Surrogate characters are not allowed: U+{ord(surrogate.group()):X}."
    return None


class Priority(models.IntegerChoices):
    """Stored as a rank so that ordering by priority is ordering by the column: high > medium > low.
    Every protocol shows the label ("low", "medium", "high")."""

    LOW = 1, "low"
    MEDIUM = 2, "medium"
    HIGH = 3, "high"

    @classmethod
    def from_name(cls, name: str) -> Priority:
        for member in cls:
            if member.label == name:
                return member
        raise ValueError(name)


class Status(models.TextChoices):
    TODO = "todo", "To do"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


def normalize_tags(value: Any) -> list[str]:
    """Trim and lowercase each tag, drop duplicates (first one wins), and check the limits.

    Raises ValidationError naming the first rule broken.
    """
    if not isinstance(value, list | tuple):
        raise ValidationError("Tags must be a list of strings.", code="invalid")
    if len(value) > MAX_TAGS_SENT:
        raise ValidationError(f"Send at most {MAX_TAGS_SENT} tags.", code="max_length")
    tags: list[str] = []
    for raw in value:
        if not isinstance(raw, str):
            raise ValidationError("Each tag must be a string.", code="invalid")
        if problem := text_problem(raw):
            raise ValidationError(problem, code="invalid")
        tag = raw.strip().lower()
        if not 1 <= len(tag) <= MAX_TAG_LENGTH:
            raise ValidationError(f"Each tag must be 1 to {MAX_TAG_LENGTH} characters long.", code="invalid")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"A task has at most {MAX_TAGS} tags.", code="max_length")
    return tags


def in_utc_range(value: datetime) -> bool:
    """False for aware times at the calendar's edge that have no UTC equivalent (year 0 or 10000)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def aware_utc(value: datetime) -> datetime:
    """The same instant in UTC. Raises ValidationError for a naive time (never guessed) and for a
    time with no UTC equivalent. Converting also keeps offsets PostgreSQL cannot store (beyond
    ±15:59, which ISO 8601 and Python allow up to ±23:59) away from the database."""
    if timezone.is_naive(value):
        raise ValidationError(NAIVE_MESSAGE, code="naive")
    if not in_utc_range(value):
        raise ValidationError(OUT_OF_RANGE_MESSAGE, code="out_of_range")
    return value.astimezone(UTC)


def parse_aware_datetime(value: Any) -> datetime:
    """An ISO 8601 date and time with an offset (text, or a datetime) → the same instant in UTC.

    The one rule for every time a client sends, in a write or a list filter (docs/domain.md,
    "Rules"). Raises ValidationError: for text that is not a date and time, including well-formed text
    that names no time (day 30 of February, year 0, hour 25, offset +25:00); then as `aware_utc`.
    """
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:  # well formed, but not a date, time or offset
            parsed = None
        if parsed is None:
            raise ValidationError(NOT_A_TIME_MESSAGE, code="invalid")
        value = parsed
    if not isinstance(value, datetime):
        raise ValidationError(NOT_A_TIME_MESSAGE, code="invalid")
    return aware_utc(value)


class TagsField(models.JSONField):
    """A JSON list of tag strings, filterable with `tags__has_tag="x"` on SQLite and PostgreSQL."""


@TagsField.register_lookup
class HasTag(Lookup):  # type: ignore[type-arg]  # generic only in django-stubs
    """`tags__has_tag="x"`: the list contains the tag.

    PostgreSQL uses `@>`, which the GIN (owner_id, jsonb_path_ops) index of migration 0003 serves (one
    owner's list asks through `tasks.filters.OwnerTags` instead, migration 0005); SQLite looks through
    the list with json_each.
    """

    lookup_name = "has_tag"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> tuple[str, list[Any]]:
        return "%s", [value]

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value = {rhs})", [*lhs_params, *rhs_params]

    def as_postgresql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} @> jsonb_build_array({rhs}::text)", [*lhs_params, *rhs_params]


class Task(models.Model):
    """A user's task.

    Invariants (kept by `tasks.services`, checked by the database): `completed` is true exactly when
    `status` is completed, and `completed_at` is set exactly then; `version` starts at 1 and grows
    by one with every change, serving as the ETag and the optimistic-concurrency token.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=MAX_TITLE_LENGTH)
    description = models.TextField(max_length=MAX_DESCRIPTION_LENGTH, blank=True, default="")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TODO)
    completed = models.BooleanField(default=False)
    due_date = models.DateTimeField(null=True, blank=True)
    tags = TagsField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # One per ordering of "my tasks"; the id column breaks ties for cursor pagination.
            models.Index(fields=["owner", "created_at", "id"], name="task_owner_created_idx"),
            models.Index(fields=["owner", "due_date", "id"], name="task_owner_due_idx"),
            models.Index(fields=["owner", "priority", "id"], name="task_owner_priority_idx"),
            models.Index(fields=["created_at", "id"], name="task_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(status=Status.COMPLETED, completed=True) | (~Q(status=Status.COMPLETED) & Q(completed=False))
                ),
                name="task_completed_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(completed=True, completed_at__isnull=False) | Q(completed=False, completed_at__isnull=True),
                name="task_completed_at_matches_completed",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="task_version_positive"),
        ]

    def __str__(self) -> str:
        return self.title

    def clean_fields(self, exclude: Any = None) -> None:
        # The title is trimmed before its length is checked: "  x  " is the one-letter title "x".
        if isinstance(self.title, str):
            self.title = self.title.strip()
        super().clean_fields(exclude=exclude)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}  # a blank title is refused by clean_fields (blank=False)
        for name in ("title", "description"):
            if problem := text_problem(str(getattr(self, name))):
                errors[name] = [problem]
        # A TextField's max_length binds forms only; the model must check it itself.
        if len(self.description) > MAX_DESCRIPTION_LENGTH:
            errors["description"] = [f"Ensure this field has at most {MAX_DESCRIPTION_LENGTH} characters."]
        try:
            self.tags = normalize_tags(self.tags)
        except ValidationError as exc:
            errors["tags"] = list(exc.messages)
        # clean() runs even when clean_fields failed, so the due date may still be the raw input.
        if isinstance(self.due_date, datetime):
            try:  # stored in UTC: the saved object then equals what the database returns
                self.due_date = aware_utc(self.due_date)
            except ValidationError as exc:
                errors["due_date"] = list(exc.messages)
        if errors:
            raise ValidationError(errors)


class IdempotencyRecord(models.Model):
    """The first outcome of a create sent with an Idempotency-Key, kept `IDEMPOTENCY_TTL` seconds.

    `response` is empty while the first request is in flight; then it holds the created task
    (`tasks.idempotency.task_to_snapshot`) that every replay returns.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
