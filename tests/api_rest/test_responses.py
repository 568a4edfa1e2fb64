"""api_rest.responses and core.headers: JSON bytes answered with headers that say "absent" without an
exception, and that otherwise behave exactly as Django's; and the views' default headers, DRF's made
once."""

from __future__ import annotations

import pytest
from django.http.response import BadHeaderError, ResponseHeaders
from django.test import RequestFactory
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from api_rest.apis import TaskCollectionApi, TaskDetailApi
from api_rest.responses import JsonBytesResponse
from core.headers import QuickHeaders

HEADERS = {"Content-Type": "application/json", "ETag": '"3"', "Vary": "Accept"}


@pytest.mark.parametrize("name", ["ETag", "etag", "ETAG", "Vary", "content-type", "X-Frame-Options", "Content-Length"])
def test_quick_headers_answer_as_djangos_do(name: str) -> None:
    django, quick = ResponseHeaders(HEADERS), QuickHeaders.adopt(ResponseHeaders(HEADERS))

    assert (name in quick) == (name in django)
    assert quick.get(name) == django.get(name)
    assert quick.get(name, "fallback") == django.get(name, "fallback")


def test_quick_headers_set_check_and_encode_as_djangos_do() -> None:
    quick = QuickHeaders.adopt(ResponseHeaders({}))

    quick.setdefault("X-Content-Type-Options", "nosniff")
    quick.setdefault("x-content-type-options", "other")  # present: kept
    quick["Content-Length"] = 12  # type: ignore[assignment]  # Django converts it

    assert dict(quick.items()) == {"X-Content-Type-Options": "nosniff", "Content-Length": "12"}
    with pytest.raises(BadHeaderError):
        quick["X-Bad"] = "a\nb"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ETag", '"7"'),
        ("X-Empty", ""),
        ("Content-Length", 12),
        ("X-Bytes", b"raw"),
        ("X-Tab", "a\tb"),
        # ASCII control characters other than CR and LF: Django stores them as they are.
        ("X-Nul", "a\x00b"),
        ("X-Del", "\x7f"),
        ("X-Vertical-Tab", "a\x0bb"),
        ("X-Latin", "café"),
        ("X-Unicode", "日本"),
        (b"X-Bytes-Name", "v"),
    ],
)
def test_quick_headers_store_what_djangos_store(name: str, value: object) -> None:
    django, quick = ResponseHeaders({}), QuickHeaders.adopt(ResponseHeaders({}))

    django[name] = value
    quick[name] = value

    assert quick._store == django._store
    assert list(quick.items()) == list(django.items())


@pytest.mark.parametrize(
    ("name", "value"), [("X-Bad", "a\nb"), ("X-Bad", "a\rb"), ("X-Bad\n", "v"), ("X-Bad", b"a\nb")]
)
def test_quick_headers_refuse_a_newline_as_djangos_do(name: str, value: object) -> None:
    with pytest.raises(BadHeaderError):
        ResponseHeaders({})[name] = value
    with pytest.raises(BadHeaderError):
        QuickHeaders.adopt(ResponseHeaders({}))[name] = value


def test_quick_headers_items_are_djangos() -> None:
    django = ResponseHeaders(HEADERS)
    quick = QuickHeaders.adopt(ResponseHeaders(HEADERS))

    assert len(quick.items()) == len(django.items()) == 3
    assert list(quick.items()) == list(django.items()) == list(HEADERS.items())
    assert ("etag", '"3"') in quick.items() and ("ETag", '"4"') not in quick.items()
    assert quick.items() == django.items()


def test_a_json_bytes_response() -> None:
    response = JsonBytesResponse(b'{"id":1}', 201, {"ETag": '"1"'})

    assert isinstance(response.headers, QuickHeaders)
    assert (response.status_code, response.content) == (201, b'{"id":1}')
    assert (response["Content-Type"], response["ETag"]) == ("application/json", '"1"')
    assert "content-type" in response and "Vary" not in response


def test_default_response_headers_are_drfs_made_once_per_view_class_and_renderers() -> None:
    def drf(view: APIView) -> dict[str, str]:
        return APIView.default_response_headers.fget(view)  # type: ignore[attr-defined,no-any-return]

    views = [TaskDetailApi(), TaskCollectionApi(), TaskDetailApi(renderer_classes=[JSONRenderer])]
    for view in views * 2:  # the second time from the memo
        assert view.default_response_headers == drf(view)
        assert "HEAD" not in view.default_response_headers["Allow"]
    for view in views:
        view.setup(RequestFactory().get("/"))  # as every request does: `head` is `get` from now on
        assert view.default_response_headers == drf(view)
        assert "HEAD" in view.default_response_headers["Allow"]
    assert views[0].default_response_headers["Allow"] != views[1].default_response_headers["Allow"]
    assert "Vary" in views[0].default_response_headers and "Vary" not in views[2].default_response_headers

    mine = views[0].default_response_headers
    mine["X-Extra"] = "1"  # a view changing its own headers changes no other request's
    assert "X-Extra" not in TaskDetailApi().default_response_headers
