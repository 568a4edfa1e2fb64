"""api_rest.responses: JSON bytes answered with headers that say "absent" without an exception, and
that otherwise behave exactly as Django's."""

from __future__ import annotations

import pytest
from django.http.response import BadHeaderError, ResponseHeaders

from api_rest.responses import JsonBytesResponse, QuickHeaders

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


def test_a_json_bytes_response() -> None:
    response = JsonBytesResponse(b'{"id":1}', 201, {"ETag": '"1"'})

    assert isinstance(response.headers, QuickHeaders)
    assert (response.status_code, response.content) == (201, b'{"id":1}')
    assert (response["Content-Type"], response["ETag"]) == ("application/json", '"1"')
    assert "content-type" in response and "Vary" not in response
