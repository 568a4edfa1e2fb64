"""CORS and compression on real requests."""

import gzip

import pytest
from django.http import HttpResponse
from django.test import Client, override_settings
from django.utils.cache import patch_vary_headers

from config.middleware import _vary_with_origin

ORIGIN = "https://app.example.com"


@pytest.fixture
def tasks_url(make_task, user) -> str:
    for _ in range(8):
        make_task(owner=user, description="x" * 300)
    return "/api/v1/tasks"


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_preflight_from_an_allowed_origin(db) -> None:
    response = Client().options(
        "/api/v1/tasks",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, if-match, idempotency-key",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert {"if-match", "idempotency-key", "authorization"} <= set(response["Access-Control-Allow-Headers"].split(", "))
    assert "Access-Control-Allow-Credentials" not in response


def test_no_cors_for_origins_not_listed(db) -> None:
    response = Client().get("/api/v1/tasks", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_a_request_without_origin_gets_only_vary_on_cors_paths(api, user, make_task) -> None:
    """config.middleware.CorsMiddleware answers a request without Origin as django-cors-headers
    does (without reading its other headers): `Vary: origin` under CORS_URLS_REGEX, no CORS header."""
    task = make_task(owner=user)
    response = api.get(f"/api/v1/tasks/{task.pk}")
    assert response.status_code == 200
    assert "origin" in [value.strip().lower() for value in response["Vary"].split(",")]
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    health = Client().get("/healthz")  # outside CORS_URLS_REGEX: nothing of CORS at all
    assert "origin" not in health.get("Vary", "").lower()
    with_origin = api.get(f"/api/v1/tasks/{task.pk}", HTTP_ORIGIN=ORIGIN)
    assert with_origin["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize("vary", [None, "Accept", "Accept, Cookie", "Origin", "accept,ORIGIN", "*", "Accept,  Cookie"])
def test_the_vary_a_request_without_origin_gets_is_djangos(vary: str | None) -> None:
    """`_vary_with_origin` remembers what Django's `patch_vary_headers` makes of each Vary value."""
    expected = HttpResponse()
    if vary is not None:
        expected["Vary"] = vary
    patch_vary_headers(expected, ("origin",))

    assert _vary_with_origin(vary) == expected["Vary"]
    assert _vary_with_origin(vary) == expected["Vary"]  # remembered, the same


def test_cors_follows_a_changed_url_pattern(api, user, make_task, settings) -> None:
    """The pattern is compiled once, and again when CORS_URLS_REGEX changes."""
    url = f"/api/v1/tasks/{make_task(owner=user).pk}"
    assert "origin" in api.get(url)["Vary"].lower()

    settings.CORS_URLS_REGEX = r"^/graphql/$"
    assert "origin" not in api.get(url)["Vary"].lower()
    settings.CORS_URLS_REGEX = r"^.*$"
    assert "origin" in Client().get("/healthz")["Vary"].lower()


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_cors_exposes_the_headers_clients_need(api, tasks_url) -> None:
    response = api.get(tasks_url, HTTP_ORIGIN=ORIGIN)
    exposed = set(response["Access-Control-Expose-Headers"].split(", "))
    assert {"ETag", "Location", "Retry-After", "X-Request-ID"} <= exposed


def test_large_responses_are_gzipped(api, tasks_url) -> None:
    plain = api.get(tasks_url)
    zipped = api.get(tasks_url, HTTP_ACCEPT_ENCODING="gzip")
    assert zipped["Content-Encoding"] == "gzip"
    assert len(zipped.content) < len(plain.content) / 2
    assert gzip.decompress(zipped.content) == plain.content


def test_small_responses_are_not_gzipped(api, user, make_task) -> None:
    task = make_task(owner=user, description="")
    response = api.get(f"/api/v1/tasks/{task.pk}", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200 and "Content-Encoding" not in response


def test_the_compression_threshold_follows_its_setting(api, tasks_url, settings) -> None:
    size = len(api.get(tasks_url).content)
    settings.COMPRESSION_MIN_BYTES = size + 1
    assert "Content-Encoding" not in api.get(tasks_url, HTTP_ACCEPT_ENCODING="gzip")
    settings.COMPRESSION_MIN_BYTES = size
    assert api.get(tasks_url, HTTP_ACCEPT_ENCODING="gzip")["Content-Encoding"] == "gzip"


def test_a_task_keeps_its_strong_etag_and_gives_it_back_in_if_match(api, user, make_task) -> None:
    """gzip would weaken the ETag (W/"1"), which no If-Match can match: a task's response is sent
    as it is, however large, and the ETag read is the one a write takes back."""
    task = make_task(owner=user, description="x" * 3000)
    url = f"/api/v1/tasks/{task.pk}"
    read = api.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert read.status_code == 200 and "Content-Encoding" not in read
    assert read["ETag"] == f'"{task.version}"'

    written = api.patch(url, {"title": "new"}, format="json", HTTP_IF_MATCH=read["ETag"], HTTP_ACCEPT_ENCODING="gzip")
    assert written.status_code == 200, written.content
    assert written["ETag"] == f'"{task.version + 1}"' and "Content-Encoding" not in written


@override_settings(COMPRESSION_ENABLED=False)
def test_compression_can_be_switched_off(client_for, user, tasks_url) -> None:
    response = client_for(user).get(tasks_url, HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in response
