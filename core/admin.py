"""Admin for API keys: created here, the raw key is shown once in the confirmation message."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.auth import api_key_create, api_key_input, api_key_revoke
from core.errors import InvalidInput
from core.models import ApiKey


class ApiKeyForm(forms.ModelForm):
    """A new key is checked by the domain's rules (`core.auth.api_key_input`) while the form can still
    answer with a field error: `save_model` runs after validation, where a refusal is a 500. An edit
    may set a past expiry: that is how a key is expired here."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.instance.pk is None and "name" in cleaned:
            try:
                api_key_input(name=cleaned["name"], expires_at=cleaned.get("expires_at"))
            except InvalidInput as exc:
                for field, field_messages in exc.extra.get("fields", {}).items():
                    for message in field_messages:
                        self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "user", "prefix", "read_only", "created_at", "expires_at", "revoked_at")
    list_filter = ("read_only", "revoked_at")
    search_fields = ("name", "prefix", "user__username")
    raw_id_fields = ("user",)
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        # The credential's owner and scope never change after creation: revoke and create another.
        base = ("prefix", "created_at", "revoked_at")
        return (*base, "user", "read_only") if obj else base

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name", "expires_at"])
            return
        key, raw = api_key_create(user=obj.user, name=obj.name, read_only=obj.read_only, expires_at=obj.expires_at)
        obj.pk = key.pk
        self.message_user(
            request,
            f"The new API key is {raw} — copy it now: it is not stored and will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        prefixes = list(queryset.values_list("prefix", flat=True))
        for prefix in prefixes:
            api_key_revoke(prefix=prefix)
        self.message_user(request, f"{len(prefixes)} key(s) revoked.", messages.SUCCESS)
