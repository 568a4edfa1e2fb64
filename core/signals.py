"""Every new user starts as an editor (docs/domain.md)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import post_save
from django.dispatch import receiver

from core.types import Role


@receiver(post_save, sender=get_user_model(), dispatch_uid="core.default_role")
def give_new_users_the_default_role(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if created and not raw:
        group, _ = Group.objects.get_or_create(name=Role.EDITOR)
        instance.groups.add(group)
