"""X-API-Key: reads, read-only keys, revocation (also of a cached key), expiry, malformed keys."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.auth import api_key_create, api_key_revoke
from core.models import ApiKey
from tasks.models import Task
from tests.api_rest.helpers import TASKS, assert_problem, task_url

pytestmark = pytest.mark.django_db


def with_key(client_for: Any, raw: str) -> APIClient:
    client = client_for(None)
    client.credentials(HTTP_X_API_KEY=raw)
    return client


def test_api_key_reads_and_writes_as_its_user(key_client: Any, user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title="Mine")
    make_task(title="Not mine")
    client, _ = key_client(user)

    assert [item["id"] for item in client.get(TASKS).json()["results"]] == [str(task.pk)]
    assert client.get(task_url(task.pk)).json()["title"] == "Mine"
    created = client.post(TASKS, {"title": "By key"}, format="json")
    assert created.status_code == 201
    assert created.json()["owner"] == user.pk


def test_read_only_key_reads_but_cannot_write(key_client: Any, user: Any, make_task: Any) -> None:
    task = make_task(owner=user, title="Keep")
    client, _ = key_client(user, read_only=True)

    assert client.get(TASKS).status_code == 200
    assert client.get(task_url(task.pk)).status_code == 200
    assert_problem(client.post(TASKS, {"title": "x"}, format="json"), 403, "permission_denied")
    assert_problem(client.patch(task_url(task.pk), {"title": "x"}, format="json"), 403, "permission_denied")
    assert_problem(client.put(task_url(task.pk), {"title": "x"}, format="json"), 403, "permission_denied")
    assert_problem(client.delete(task_url(task.pk)), 403, "permission_denied")
    assert list(Task.objects.values_list("title", flat=True)) == ["Keep"]


def test_key_of_a_viewer_cannot_write(key_client: Any, viewer: Any) -> None:
    client, _ = key_client(viewer)

    assert client.get(TASKS).status_code == 200
    assert_problem(client.post(TASKS, {"title": "x"}, format="json"), 403, "permission_denied")


def test_revoked_key_is_refused_at_once_even_when_cached(
    key_client: Any, user: Any, django_assert_num_queries: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client, key = key_client(user)
    assert client.get(TASKS).status_code == 200
    with django_assert_num_queries(0):  # the key (and the page) now come from the cache
        assert client.get(TASKS).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(prefix=key.prefix)

    response = client.get(TASKS)
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert_problem(client.post(TASKS, {"title": "x"}, format="json"), 401, "not_authenticated")


def test_revoked_key_is_refused_when_not_cached(key_client: Any, user: Any) -> None:
    client, key = key_client(user)
    api_key_revoke(prefix=key.prefix)

    assert_problem(client.get(TASKS), 401, "not_authenticated")


def test_expired_key_is_401(key_client: Any, user: Any) -> None:
    client, key = key_client(user, expires_at=timezone.now() + timedelta(days=1))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    body = assert_problem(client.get(TASKS), 401, "not_authenticated")
    assert "expired" in body["detail"]


def test_key_that_expires_while_cached_is_401(key_client: Any, user: Any) -> None:
    expires_at = timezone.now() + timedelta(seconds=0.6)
    client, _ = key_client(user, expires_at=expires_at)
    assert client.get(TASKS).status_code == 200  # cached with its expiry

    time.sleep(max(0.0, (expires_at - timezone.now()).total_seconds()) + 0.05)

    assert_problem(client.get(TASKS), 401, "not_authenticated")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "nonsense",
        "th_",
        "th__secret",
        "th_prefix_",
        "xx_{prefix}_{secret}",
        "th_{prefix}_wrong-secret",
        "th_000000000000_{secret}",
        "th_{prefix}_{secret}x",
    ],
)
def test_malformed_unknown_or_wrong_key_is_401(client_for: Any, user: Any, raw: str) -> None:
    _, good = api_key_create(user=user, name="real")
    _, prefix, secret = good.split("_", 2)

    response = with_key(client_for, raw.format(prefix=prefix, secret=secret)).get(TASKS)

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_key_of_a_deactivated_user_is_401(key_client: Any, user: Any) -> None:
    client, _ = key_client(user)
    user.is_active = False
    user.save()

    assert_problem(client.get(TASKS), 401, "not_authenticated")
