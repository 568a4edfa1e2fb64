"""api_rest.negotiation.RememberedNegotiation: DRF's answer, remembered only where it cannot differ."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from api_rest import negotiation
from api_rest.negotiation import MAX_ANSWERS, RememberedNegotiation

RENDERERS = (JSONRenderer, BrowsableAPIRenderer)


@pytest.fixture(autouse=True)
def _empty_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RememberedNegotiation, "_answers", {})


def _request(accept: str | None, query: str = "") -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get(f"/api/v1/tasks{query}", **headers))


def _select(negotiator: DefaultContentNegotiation, request: Request) -> tuple[type[BaseRenderer], str]:
    renderer, media_type = negotiator.select_renderer(request, [cls() for cls in RENDERERS])
    return type(renderer), media_type


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        (None, ""),
        ("*/*", ""),
        ("application/json", ""),
        ("application/json; indent=4", ""),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ""),
        ("application/*", ""),
        ("*/*", "?format=api"),
        ("*/*", "?format=json"),
        ("*/*", "?limit=5"),
        ("text/html", "?format=api"),
    ],
)
def test_the_answer_is_drfs_and_stays_so(accept: str | None, query: str) -> None:
    expected = _select(DefaultContentNegotiation(), _request(accept, query))
    remembered = RememberedNegotiation()

    first = _select(remembered, _request(accept, query))
    again = _select(remembered, _request(accept, query))

    assert first == again == expected
    assert len(RememberedNegotiation._answers) == 1


def test_the_renderer_is_the_requests_own_instance() -> None:
    negotiator = RememberedNegotiation()
    _select(negotiator, _request("*/*"))
    renderers = [cls() for cls in RENDERERS]

    renderer, _ = negotiator.select_renderer(_request("*/*"), renderers)

    assert renderer is renderers[0]


def test_a_refusal_is_raised_every_time_and_never_kept() -> None:
    for _ in range(2):
        with pytest.raises(NotAcceptable):
            _select(RememberedNegotiation(), _request("image/png"))
    assert RememberedNegotiation._answers == {}


def test_the_memo_stays_small_whatever_clients_send() -> None:
    negotiator = RememberedNegotiation()
    for n in range(MAX_ANSWERS * 2 + 5):
        _select(negotiator, _request(f"application/json; v={n}"))
        assert len(RememberedNegotiation._answers) <= MAX_ANSWERS


def test_a_long_header_is_negotiated_but_not_kept() -> None:
    accept = "application/json, " + "text/x-other, " * (negotiation.MAX_REMEMBERED_ACCEPT // 10)

    assert _select(RememberedNegotiation(), _request(accept)) == (JSONRenderer, "application/json")
    assert RememberedNegotiation._answers == {}
