from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.auth import authenticate_api_key
from core.errors import NotAuthenticated
from tasks.models import Task
from tests.factories import UserFactory


def test_seed_demo_is_idempotent(db) -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)
    assert "demo / demo-password" in out.getvalue()
    assert Task.objects.filter(owner__username="demo").count() == 5


def test_apikey_command_creates_lists_and_revokes(db, django_capture_on_commit_callbacks) -> None:
    UserFactory(username="ops")
    out = StringIO()
    call_command("apikey", "create", "--user", "ops", "--name", "deploy", "--read-only", stdout=out, stderr=StringIO())
    raw = out.getvalue().strip()
    assert authenticate_api_key(raw).read_only
    prefix = raw.split("_")[1]
    listing = StringIO()
    call_command("apikey", "list", stdout=listing)
    assert prefix in listing.getvalue() and raw.split("_", 2)[2] not in listing.getvalue()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("apikey", "revoke", prefix, stdout=StringIO())
    with pytest.raises(NotAuthenticated):
        authenticate_api_key(raw)


def test_apikey_command_reports_errors(db) -> None:
    with pytest.raises(CommandError):
        call_command("apikey", "create", "--user", "nobody", "--name", "x")
    with pytest.raises(CommandError):
        call_command("apikey", "revoke", "unknown")
