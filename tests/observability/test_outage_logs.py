"""An expected, already answered outage is logged once, at WARNING, not once per request at ERROR;
a real server error still is an ERROR. /readyz's 503 says when to ask again (Retry-After)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client, override_settings

from tasks.models import Task
from tests.api_rest.helpers import TASKS, assert_problem, task_url
from tests.conftest import access_token
from tests.core.test_cache import DEAD_REDIS
from tests.faults import database_unreachable


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno == level]


@pytest.mark.django_db(transaction=True)
def test_readyz_503_has_retry_after() -> None:
    with database_unreachable():
        for path in ("/readyz", "/health"):
            response = Client().get(path)
            assert response.status_code == 503
            assert int(response["Retry-After"]) > 0
    assert "Retry-After" not in Client().get("/readyz")


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_is_one_warning_not_an_error_per_request(
    client_for: Any, user: Any, make_task: Any, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    settings.DATABASE_RETRY_WINDOW = 0.1  # the retries are not what this test is about
    task = make_task(owner=user)
    client = client_for(user)
    with caplog.at_level(logging.INFO), database_unreachable():
        for _ in range(3):
            assert_problem(client.get(task_url(task.pk)), 503, "unavailable")
            assert_problem(client.post(TASKS, {"title": "x"}, format="json"), 503, "unavailable")
            assert Client().get("/readyz").status_code == 503

    assert records(caplog, logging.ERROR) == []
    warnings = records(caplog, logging.WARNING)
    assert len([w for w in warnings if "database unavailable" in w]) == 1, warnings

    # Back: the next readiness check closes the outage with one INFO line.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert Client().get("/readyz").status_code == 200
    assert any("database available again" in line for line in records(caplog, logging.INFO)), caplog.records


@pytest.mark.django_db
def test_a_cache_outage_is_one_warning_for_any_number_of_probes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), override_settings(CACHES=DEAD_REDIS, CACHE_RETRY_AFTER=0.01):
        for _ in range(5):
            response = Client().get("/readyz")
            assert response.status_code == 200
            assert response.json()["components"]["cache"]["status"] == "degraded"
    cache_warnings = [w for w in records(caplog, logging.WARNING) if "cache" in w]
    assert len(cache_warnings) == 1, cache_warnings


@pytest.mark.django_db
def test_a_real_server_error_is_still_an_error(user: Any, make_task: Any, caplog: pytest.LogCaptureFixture) -> None:
    task = make_task(owner=user)
    Task.objects.filter(pk=task.pk).update(priority=7)  # rendering it fails unexpectedly (KeyError)
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
    with caplog.at_level(logging.INFO):
        assert client.get(task_url(task.pk)).status_code == 500
    assert any(line.startswith("django.request") for line in records(caplog, logging.ERROR)), caplog.records
