"""Password logins share one rate limit (core/backends.py, core.ratelimit.check_login): the token
endpoint, the admin's login form and the browsable API's login form count against the client
address (the token endpoints' scope) and against the username, on the production server (granian,
production settings, their default limits unless a test names one)."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.factories import UserFactory
from tests.live import test_database_url
from tests.observability.test_health import Process, server_environment, start_http

__all__ = ["start_http"]  # a fixture, used by name

PASSWORD = "pass-word-123"  # tests.factories.UserFactory
TOKEN = "/api/v1/auth/token"
ADMIN_LOGIN = "/admin/login/"
API_LOGIN = "/api-auth/login/"


def live_user(username: str, **fields: Any) -> Any:
    """A user whose password the production server can check: the tests' MD5 hasher is not one of
    production's, so the password is stored with production's PBKDF2 (few iterations: fast)."""
    user = UserFactory(username=username, **fields)
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])
    return user


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def _request(server: Process, method: str, path: str, body: bytes | None = None, **headers: str) -> Reply:
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        client.request(method, path, body=body, headers=headers)
        response = client.getresponse()
        text = response.read().decode(errors="replace")
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
    finally:
        client.close()


def token_login(server: Process, username: str, password: str, forwarded_for: str = "") -> Reply:
    body = json.dumps({"username": username, "password": password}).encode()
    extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return _request(server, "POST", TOKEN, body, **{"Content-Type": "application/json", **extra})


def form_login(server: Process, path: str, username: str, password: str, forwarded_for: str = "") -> Reply:
    """What a browser does: GET the form (CSRF cookie and token), POST it back."""
    extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    page = _request(server, "GET", path, Accept="text/html", **extra)
    assert page.status == 200, page.text[:500]
    cookie = re.search(r"csrftoken=([^;]+)", page.headers["set-cookie"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert cookie and token
    body = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1), "next": "/admin/"}
    ).encode()
    return _request(
        server,
        "POST",
        path,
        body,
        **{
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookie.group(1)}",
            "Accept": "text/html",
            **extra,
        },
    )


def assert_limited(reply: Reply) -> None:
    assert reply.status == 429, (reply.status, reply.text[:300])
    assert 0 < int(reply.headers["retry-after"]) <= 3600
    assert "sessionid" not in reply.headers.get("set-cookie", "")  # no session was opened


@pytest.fixture
def serve(start_http: Callable[..., Process], production_static_root: str) -> Callable[..., Process]:
    def start(**variables: str) -> Process:
        return start_http(
            server_environment(
                test_database_url(), settings.REDIS_URL, DJANGO_STATIC_ROOT=production_static_root, **variables
            ),
            # Production runs several workers sharing Redis' counters; the local-memory cache of the
            # embedded default counts per process, so one worker there (docs/architecture.md, "Rate limits").
            workers=2 if settings.REDIS_URL else 1,
        )

    return start


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("form", [ADMIN_LOGIN, API_LOGIN])
def test_form_logins_are_limited_per_address_after_the_token_endpoint(serve: Callable[..., Process], form: str) -> None:
    """The probe's attack: guesses at the token endpoint until it answers 429, then the same address
    tries a form login, with the right password. The production defaults (10/m per address)."""
    live_user("victim", is_staff=True, is_superuser=True)
    server = serve()
    if time.time() % 60 > 45:  # the minute window is aligned on the clock: start well inside one
        time.sleep(61 - time.time() % 60)

    guesses = [token_login(server, "victim", f"guess-{n}").status for n in range(12)]
    assert guesses[:10] == [401] * 10
    assert guesses[10:] == [429, 429]

    assert_limited(form_login(server, form, "victim", PASSWORD))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("form", [ADMIN_LOGIN, API_LOGIN])
def test_form_logins_count_against_the_token_endpoint(serve: Callable[..., Process], form: str) -> None:
    """Guessing through a form spends the same per-address budget: the token endpoint then refuses
    the right password too, with problem JSON."""
    live_user("victim", is_staff=True, is_superuser=True)
    server = serve(RATE_LIMIT_TOKEN="4/h", RATE_LIMIT_LOGIN_USER="1000/h")

    wrong = [form_login(server, form, "victim", f"guess-{n}") for n in range(4)]
    assert [reply.status for reply in wrong] == [200] * 4  # the form again, with its error
    limited = form_login(server, form, "victim", PASSWORD)
    assert_limited(limited)
    assert limited.headers["content-type"].startswith("text/html")

    refused = token_login(server, "victim", PASSWORD)
    assert_limited(refused)
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["retry_after"] == int(refused.headers["retry-after"])


@pytest.mark.django_db(transaction=True)
def test_a_username_is_limited_from_every_address(serve: Callable[..., Process]) -> None:
    """Guesses at one username spread over many addresses (each behind the one trusted proxy): after
    RATE_LIMIT_LOGIN_USER attempts, the right password is refused on every login, from a fresh
    address too; another username from that address still logs in."""
    live_user("victim", is_staff=True, is_superuser=True)
    live_user("bystander", is_staff=True, is_superuser=True)
    server = serve(TRUSTED_PROXY_COUNT="1", RATE_LIMIT_LOGIN_USER="3/h", RATE_LIMIT_TOKEN="1000/h")

    assert token_login(server, "victim", "guess-1", "203.0.113.1").status == 401
    assert form_login(server, ADMIN_LOGIN, "victim", "guess-2", "203.0.113.2").status == 200
    assert form_login(server, API_LOGIN, "VICTIM", "guess-3", "203.0.113.3").status == 200  # any case

    assert_limited(token_login(server, "victim", PASSWORD, "203.0.113.4"))
    assert_limited(form_login(server, ADMIN_LOGIN, "victim", PASSWORD, "203.0.113.5"))
    assert_limited(form_login(server, API_LOGIN, "victim", PASSWORD, "203.0.113.6"))

    assert token_login(server, "bystander", PASSWORD, "203.0.113.4").status == 200
    assert form_login(server, ADMIN_LOGIN, "bystander", PASSWORD, "203.0.113.5").status == 302


@pytest.mark.django_db(transaction=True)
def test_the_token_endpoint_counts_an_attempt_once_per_address(serve: Callable[..., Process]) -> None:
    """The token endpoint's throttle counts the address; the backend does not count it again."""
    live_user("victim")
    server = serve(RATE_LIMIT_TOKEN="4/h", RATE_LIMIT_LOGIN_USER="1000/h")

    statuses = [token_login(server, "victim", PASSWORD).status for _ in range(5)]

    assert statuses == [200, 200, 200, 200, 429]


def test_calls_without_a_request_are_not_counted(db: None, settings: Any) -> None:
    """`authenticate()` from a shell or a command has no client: nothing to count."""
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_user": ["1/h"]}
    UserFactory(username="operator")

    assert all(authenticate(username="operator", password=PASSWORD) is not None for _ in range(3))
