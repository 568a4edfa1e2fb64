"""Admin for tasks. Saves, deletes and the bulk action go through tasks.services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.auth import actor_from_user
from core.errors import ApplicationError
from tasks.models import Task
from tasks.services import (
    EDITABLE_FIELDS,
    task_complete_many,
    task_create,
    task_delete,
    task_delete_many,
    task_update,
)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "priority", "status", "due_date", "updated_at", "version")
    list_filter = ("status", "priority", "completed", "due_date")
    search_fields = ("title", "description", "owner__username")
    readonly_fields = ("id", "created_at", "updated_at", "completed_at", "version")
    fields = (
        "id",
        "owner",
        "title",
        "description",
        "priority",
        "status",
        "completed",
        "due_date",
        "tags",
        "created_at",
        "updated_at",
        "completed_at",
        "version",
    )
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    actions = ["mark_completed"]

    @admin.action(description="Mark selected tasks completed")
    def mark_completed(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        task_complete_many(actor=actor_from_user(request.user), task_ids=ids)
        self.message_user(request, f"{len(ids)} task(s) marked completed.", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: Task, form: Any, change: bool) -> None:
        actor = actor_from_user(request.user)
        data = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS if name in form.cleaned_data}
        try:
            if change:
                saved = task_update(actor=actor, task_id=obj.pk, changes=data)
            else:
                saved = task_create(actor=actor, data=data, owner_id=form.cleaned_data["owner"].pk)
        except ApplicationError as exc:  # shown to the admin user; the form has already validated types
            self.message_user(request, exc.message, messages.ERROR)
            raise
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Task) -> None:
        task_delete(actor=actor_from_user(request.user), task_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        task_delete_many(actor=actor_from_user(request.user), task_ids=list(queryset.values_list("pk", flat=True)))
