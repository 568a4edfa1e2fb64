"""GET /api/v1/cache/stats: hit, miss and error counts for managers only."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.api_rest.helpers import assert_problem, task_url

pytestmark = pytest.mark.django_db

STATS = "/api/v1/cache/stats"


def test_manager_reads_the_counts(client_for: Any, manager: Any, make_task: Any) -> None:
    client = client_for(manager)
    task = make_task()
    before = client.get(STATS)

    client.get(task_url(task.pk))  # miss, then stored
    client.get(task_url(task.pk))  # hit
    client.get(task_url(task.pk))  # hit
    after = client.get(STATS)

    assert before.status_code == after.status_code == 200
    body = after.json()
    assert set(body) == {"backend", "hits", "misses", "errors", "hit_ratio"}
    assert body["hits"] - before.json()["hits"] >= 2
    assert body["misses"] - before.json()["misses"] >= 1
    assert body["errors"] == 0
    assert 0 < body["hit_ratio"] <= 1
    assert body["hit_ratio"] == round(body["hits"] / (body["hits"] + body["misses"]), 4)


@pytest.mark.parametrize("who", ["user", "viewer"])
def test_non_managers_are_refused(client_for: Any, who: str, request: Any) -> None:
    assert_problem(client_for(request.getfixturevalue(who)).get(STATS), 403, "permission_denied")


def test_anonymous_is_401(anon: APIClient) -> None:
    response = anon.get(STATS)

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
