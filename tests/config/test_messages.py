"""config.middleware.MessageMiddleware: Django's messages, the storage made only when used."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib import messages
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.utils.functional import empty

from config.middleware import MessageMiddleware

pytestmark = pytest.mark.django_db


def _through(view: Callable[[HttpRequest], HttpResponse], request: HttpRequest) -> HttpResponse:
    return SessionMiddleware(MessageMiddleware(view))(request)  # type: ignore[arg-type,return-value]


def test_a_message_added_is_stored_and_read_by_the_next_request() -> None:
    def add(request: HttpRequest) -> HttpResponse:
        messages.success(request, "Saved.")
        return HttpResponse("ok")

    added = _through(add, RequestFactory().get("/"))
    assert "messages" in added.cookies  # django's cookie storage took it

    seen: list[str] = []

    def read(request: HttpRequest) -> HttpResponse:
        seen.extend(str(message) for message in messages.get_messages(request))
        return HttpResponse("ok")

    follow = RequestFactory().get("/")
    follow.COOKIES["messages"] = added.cookies["messages"].value
    shown = _through(read, follow)

    assert seen == ["Saved."]
    assert shown.cookies["messages"].value == ""  # read: the cookie is cleared


def test_a_request_that_uses_no_messages_builds_no_storage() -> None:
    request = RequestFactory().get("/")

    response = _through(lambda request: HttpResponse("ok"), request)

    assert "messages" not in response.cookies
    assert request._messages._wrapped is empty  # type: ignore[attr-defined]
