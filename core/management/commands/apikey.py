"""`manage.py apikey create|revoke|list`: API keys from the command line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.auth import api_key_create, api_key_revoke
from core.errors import ApplicationError
from core.models import ApiKey

# About 100 years: a longer expiry is a typo (and past 2.7 million days a datetime overflows).
MAX_EXPIRES_IN_DAYS = 36_500


class Command(BaseCommand):
    help = "Create, revoke or list API keys. A new key is printed once and never stored."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a key for a user.")
        create.add_argument("--user", required=True, help="Username of the key's owner.")
        create.add_argument("--name", required=True, help="What the key is for.")
        create.add_argument("--read-only", action="store_true", help="The key can read but not write.")
        create.add_argument("--expires-in-days", type=int, help="Expire after this many days (default: never).")
        revoke = sub.add_parser("revoke", help="Revoke a key by its prefix.")
        revoke.add_argument("prefix")
        listing = sub.add_parser("list", help="List keys (never their secrets).")
        listing.add_argument("--user", help="Only this user's keys.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"handle_{options['action']}")(**options)
        except ApplicationError as exc:
            # The domain's field messages ("name: Ensure this field has no more than 100 ..."), not
            # only its headline.
            fields = exc.extra.get("fields", {})
            details = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
            raise CommandError(f"{exc.message} {details}".strip()) from exc

    def handle_create(self, *, user: str, name: str, read_only: bool, expires_in_days: int | None, **_: Any) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user named {user!r}.")
        expires_at = None
        if expires_in_days is not None:
            # 0 is not "never" (that is leaving the option out), and a negative count an expired key.
            if not 1 <= expires_in_days <= MAX_EXPIRES_IN_DAYS:
                raise CommandError(f"--expires-in-days must be between 1 and {MAX_EXPIRES_IN_DAYS}.")
            expires_at = timezone.now() + timedelta(days=expires_in_days)
        key, raw = api_key_create(user=owner, name=name, read_only=read_only, expires_at=expires_at)
        self.stderr.write(f"Created key {key.prefix} for {owner.get_username()}. Store it now; it is not shown again:")
        self.stdout.write(raw)

    def handle_revoke(self, *, prefix: str, **_: Any) -> None:
        key = api_key_revoke(prefix=prefix)
        self.stdout.write(f"Revoked {key.prefix} ({key.name}).")

    def handle_list(self, *, user: str | None, **_: Any) -> None:
        keys = ApiKey.objects.select_related("user").order_by("user__username", "created_at")
        if user:
            keys = keys.filter(user__username=user)
        for key in keys:
            state = "revoked" if key.revoked_at else ("usable" if key.is_usable else "expired")
            mode = "read-only" if key.read_only else "read-write"
            self.stdout.write(f"{key.prefix}  {key.user.get_username():<20} {mode:<10} {state:<8} {key.name}")
