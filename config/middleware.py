"""HTTP middleware that belongs to no adapter: it shapes every HTTP response the same way."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.gzip import GZipMiddleware
from django.utils.html import escape

from api_rest.errors import PROBLEM_CONTENT_TYPE, problem_of
from core.errors import ApplicationError, LengthRequired, RateLimited


class CompressionMiddleware(GZipMiddleware):
    """Django's GZipMiddleware (with its BREACH padding), for bodies of COMPRESSION_MIN_BYTES or more:
    below ~1 KiB gzip saves too little to pay for the CPU. Never for an event stream (text/event-stream):
    its messages are small and each must reach the client as it is sent, which gzip does not promise
    every client and proxy on the way."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        if not settings.COMPRESSION_ENABLED:
            raise MiddlewareNotUsed
        super().__init__(get_response)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not response.streaming and len(response.content) < settings.COMPRESSION_MIN_BYTES:  # type: ignore[attr-defined]
            return response
        if response.get("Content-Type", "").startswith("text/event-stream"):
            return response
        return super().process_response(request, response)


class RateLimitHeadersMiddleware:
    """`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (IETF draft) on every HTTP
    response whose request was counted (REST throttle, GraphQL view), for its strictest window."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        decision = getattr(request, "rate_limit", None)
        if decision is not None and decision.limit:
            response["RateLimit-Limit"] = str(decision.limit)
            response["RateLimit-Remaining"] = str(decision.remaining)
            response["RateLimit-Reset"] = str(decision.reset)
        return response


class LengthRequiredMiddleware:
    """411 Length Required for a request whose body comes without a `Content-Length` (sent with
    `Transfer-Encoding: chunked`, or any other transfer coding).

    Django reads exactly CONTENT_LENGTH bytes of a body; WSGI servers such as granian pass a chunked
    body through without one, so Django would see an empty body: a PATCH would answer 200 having
    changed nothing. Refusing it says so instead (docs/api/rest.md, "Headers"). Right below the
    observability middleware, so the refusal is logged and counted like any other answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if "HTTP_TRANSFER_ENCODING" in request.META and not request.META.get("CONTENT_LENGTH"):
            return _problem_response(
                LengthRequired("A request body needs a Content-Length header; chunked bodies are refused.")
            )
        return self.get_response(request)


class RateLimitedMiddleware:
    """429 with `Retry-After` for a `core.errors.RateLimited` that escapes a view no adapter maps:
    the admin's and the browsable API's login forms, refused by `core.backends` (docs/architecture.md,
    "Rate limits"). A browser gets a short HTML page; any other client problem JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        if not isinstance(exception, RateLimited):
            return None
        seconds = exception.retry_after
        response: HttpResponseBase
        if "text/html" in request.headers.get("Accept", ""):
            response = HttpResponse(
                "<!DOCTYPE html><html><head><title>Too many requests</title></head><body>"
                "<h1>Too many login attempts</h1>"
                f"<p>Try again in {escape(seconds)} seconds.</p></body></html>",
                status=429,
                content_type="text/html; charset=utf-8",
            )
        else:
            response = _problem_response(exception)
        response["Retry-After"] = str(seconds)
        return response


def _problem_response(error: ApplicationError) -> JsonResponse:
    status_code, body, headers = problem_of(error)
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE, headers=headers)
