"""The API key admin: a new key the domain would refuse (`core.auth.api_key_input`) is a form error on
the add page, never a 500 from `save_model`; an existing key may still be expired by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.auth import api_key_create, authenticate_api_key
from core.errors import NotAuthenticated
from core.models import ApiKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/core/apikey/add/"


@pytest.fixture
def staff_client() -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_a_new_key_that_expires_in_the_past_is_a_form_error(staff_client: Client) -> None:
    owner = UserFactory()
    response = staff_client.post(
        ADD, {"user": owner.pk, "name": "ci", "expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"}
    )
    assert response.status_code == 200, response.status_code  # the form again, not a 500
    assert response.context["adminform"].form.errors == {"expires_at": ["The expiry must be in the future."]}
    assert not ApiKey.objects.exists()


def test_a_new_key_whose_name_is_only_spaces_is_a_form_error(staff_client: Client) -> None:
    response = staff_client.post(ADD, {"user": UserFactory().pk, "name": "   "})
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()


def test_a_new_key_with_a_future_expiry_is_created(staff_client: Client) -> None:
    owner = UserFactory()
    tomorrow = timezone.localtime() + timedelta(days=1)
    response = staff_client.post(
        ADD,
        {
            "user": owner.pk,
            "name": "ci",
            "expires_at_0": tomorrow.strftime("%Y-%m-%d"),
            "expires_at_1": tomorrow.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302
    assert ApiKey.objects.get(user=owner).expires_at is not None


def test_an_existing_key_may_be_expired_by_hand(staff_client: Client, django_capture_on_commit_callbacks) -> None:
    owner = UserFactory()
    key, raw = api_key_create(user=owner, name="ci")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            f"/admin/core/apikey/{key.pk}/change/",
            {"name": "ci", "expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"},
        )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    with pytest.raises(NotAuthenticated):
        authenticate_api_key(raw)
