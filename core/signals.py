"""Every new user starts as an editor (docs/domain.md); a changed or deleted API key is never served
from the cache (core.auth.refresh_cached_api_key)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core.auth import refresh_cached_api_key
from core.models import ApiKey
from core.types import Role


@receiver(post_save, sender=get_user_model(), dispatch_uid="core.default_role")
def give_new_users_the_default_role(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if created and not raw:
        group, _ = Group.objects.get_or_create(name=Role.EDITOR)
        instance.groups.add(group)


@receiver(post_save, sender=ApiKey, dispatch_uid="core.api_key_saved")
def refresh_a_changed_api_key(sender: Any, instance: ApiKey, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if not created and not raw:
        refresh_cached_api_key(instance.prefix)


@receiver(post_delete, sender=ApiKey, dispatch_uid="core.api_key_deleted")
def refresh_a_deleted_api_key(sender: Any, instance: ApiKey, **kwargs: Any) -> None:
    refresh_cached_api_key(instance.prefix)
