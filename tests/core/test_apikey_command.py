"""`manage.py apikey create`: arguments out of range are a CommandError naming the rule, and nothing
is created; the name's length is the domain's rule (`core.auth.api_key_input`), as in the admin."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from core.models import ApiKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def create(*arguments: str) -> str:
    user = UserFactory._meta.model.objects.filter(username="owner").first() or UserFactory(username="owner")
    out = io.StringIO()
    call_command("apikey", "create", "--user", user.username, *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


@pytest.mark.parametrize("days", ["0", "-1", "36501", "10000000"])
def test_an_expiry_out_of_range_is_refused(days: str) -> None:
    """0 used to be a key that never expires, 10000000 an OverflowError traceback."""
    with pytest.raises(CommandError, match="--expires-in-days must be between 1 and 36500"):
        create("--name", "n", "--expires-in-days", days)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("days", [1, 36500])
def test_an_expiry_in_range_is_that_many_days(days: int) -> None:
    create("--name", "n", "--expires-in-days", str(days))
    expires_at = ApiKey.objects.get().expires_at
    assert expires_at is not None
    assert abs(expires_at - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)


def test_no_expiry_is_a_key_that_never_expires() -> None:
    create("--name", "n")
    assert ApiKey.objects.get().expires_at is None


def test_a_name_over_100_characters_is_refused_with_the_field_named() -> None:
    """SQLite used to store it, PostgreSQL to fail with a DataError."""
    with pytest.raises(CommandError, match="name: Ensure this field has no more than 100 characters"):
        create("--name", "n" * 101)
    assert not ApiKey.objects.exists()
    create("--name", "n" * 100)
    assert ApiKey.objects.get().name == "n" * 100
