"""Shared fixtures. Tests run against whatever DATABASE_URL / REDIS_URL say: SQLite and local memory
by default, the real PostgreSQL and Redis in the second `.ci/run` pass."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from api_rest.auth import TokenObtainSerializer
from core import outages
from core.auth import verified_tokens
from core.cache import safe_cache
from core.postgresql.base import forget as forget_unanswered_servers
from core.types import Actor, Role
from tasks import events
from tests.factories import TaskFactory, UserFactory, actor_of


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    on_redis = bool(settings.REDIS_URL)
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL=postgres://…"))
        if "redis" in item.keywords and not on_redis:
            item.add_marker(pytest.mark.skip(reason="needs REDIS_URL=redis://…"))


@pytest.fixture(scope="session", autouse=True)
def _end_stray_sessions(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """On PostgreSQL, end the sessions the tests' own threads left open (the pool threads of the
    in-process gRPC servers keep their persistent connections after the server stops), so the test
    database can be dropped at the end instead of a warning that it is still in use."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def production_static_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`manage.py collectstatic` with the production storage, once per session: what a production
    server serves pages from (pass it as DJANGO_STATIC_ROOT to a live server that renders pages)."""
    root = tmp_path_factory.mktemp("static")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "s" * 60,
        "JWT_SIGNING_KEY": "j" * 60,
        "DJANGO_STATIC_ROOT": str(root),
    }
    env.pop("DJANGO_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input"],
        env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return str(root)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Every test starts with an empty cache, fresh counters and no outage on record."""
    cache.clear()
    safe_cache.reset()
    outages.reset()
    events.reopen()  # a test that stopped a server's streams (events.shutdown) leaves them refused
    verified_tokens.clear()
    forget_unanswered_servers()  # a test's server that answered no connection attempt is gone
    yield
    safe_cache.reset()


@pytest.fixture
def user(db: None) -> Any:
    return UserFactory()


@pytest.fixture
def other_user(db: None) -> Any:
    return UserFactory()


@pytest.fixture
def viewer(db: None) -> Any:
    return UserFactory(role=Role.VIEWER)


@pytest.fixture
def manager(db: None) -> Any:
    return UserFactory(role=Role.MANAGER)


@pytest.fixture
def actor(user: Any) -> Actor:
    return actor_of(user)


@pytest.fixture
def make_task(db: None) -> Callable[..., Any]:
    return TaskFactory


def access_token(user: Any) -> str:
    return str(TokenObtainSerializer.get_token(user).access_token)


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    """An API client sending a real JWT of `user` (None: anonymous)."""

    def build(user: Any | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
        return client

    return build


@pytest.fixture
def api(client_for: Callable[[Any], APIClient], user: Any) -> APIClient:
    return client_for(user)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"
