"""HTTP middleware that belongs to no adapter: it shapes every HTTP response the same way."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable

from corsheaders.middleware import CorsMiddleware as BaseCorsMiddleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as BaseAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as BaseMessageMiddleware
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.middleware import SessionMiddleware as BaseSessionMiddleware
from django.core.exceptions import MiddlewareNotUsed
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.gzip import GZipMiddleware
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import SimpleLazyObject, empty
from django.utils.html import escape

from api_graphql import PATH as GRAPHQL_PATH
from api_rest.errors import PROBLEM_CONTENT_TYPE, problem_of
from api_rest.urls import PREFIX as REST_PREFIX
from core.errors import ApplicationError, LengthRequired, RateLimited
from observability.switches import KeptSetting, Switch

# Settings every response reads, kept once read (observability.switches: a read through Django's
# settings costs ~3,400 instructions).
_COMPRESSION_MIN_BYTES = KeptSetting("COMPRESSION_MIN_BYTES", int)
_DEBUG = Switch("DEBUG")
# django-cors-headers' CORS_URLS_REGEX, compiled (the library reads the setting and looks the pattern up
# in `re`'s cache on every request); its default when the setting is absent.
_CORS_URLS = KeptSetting("CORS_URLS_REGEX", re.compile, default=r"^.*$")


class CompressionMiddleware(GZipMiddleware):
    """Django's GZipMiddleware (with its BREACH padding), for bodies of COMPRESSION_MIN_BYTES or more:
    below ~1 KiB gzip saves too little to pay for the CPU. Never for an event stream (text/event-stream):
    its messages are small and each must reach the client as it is sent, which gzip does not promise
    every client and proxy on the way. Nor for a response with a strong ETag (a task): see below."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        if not settings.COMPRESSION_ENABLED:
            raise MiddlewareNotUsed
        super().__init__(get_response)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not response.streaming and len(response.content) < _COMPRESSION_MIN_BYTES():  # type: ignore[attr-defined]
            return response
        if response.get("Content-Type", "").startswith("text/event-stream"):
            return response
        if response.get("ETag", "").startswith('"'):
            # A strong entity tag names these very bytes: gzip would make it weak (GZipMiddleware
            # does), and a weak tag never satisfies If-Match, so a client could no longer send back
            # the ETag of a task it read
            # (docs/api/rest.md, "Update: `PATCH tasks/{id}` and `PUT tasks/{id}`").
            return response
        return super().process_response(request, response)


# The response attributes of django-csp's per-view decorators (csp_update, csp_replace, csp_exempt...).
_CSP_OVERRIDES = frozenset(
    {
        "_csp_config",
        "_csp_update",
        "_csp_replace",
        "_csp_exempt",
        "_csp_config_ro",
        "_csp_update_ro",
        "_csp_replace_ro",
        "_csp_exempt_ro",
    }
)
# (header, policy, excluded path prefixes) for the enforced and the report-only policy, built from
# the settings the first time a response needs them; None until then.
_csp_headers: list[tuple[str, str, tuple[str, ...]]] | None = None


@receiver(setting_changed)
def _forget_csp_headers(*, setting: str, **kwargs: object) -> None:
    global _csp_headers
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _csp_headers = None


def _settings_csp_headers() -> list[tuple[str, str, tuple[str, ...]]]:
    global _csp_headers
    if _csp_headers is None:
        headers = []
        for header, name, report_only in (
            (HEADER, "CONTENT_SECURITY_POLICY", False),
            (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
        ):
            if policy := build_policy(report_only=report_only):
                prefixes = (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
                headers.append((header, policy, tuple(prefixes)))
        _csp_headers = headers
    return _csp_headers


# What `request.csp_nonce` is once the header is written, as django-csp makes it: asking raises
# CSPNonceError. It never holds a value, so one serves every request.
_NONCE_AFTER_RESPONSE = CheckableLazyObject(BaseCSPMiddleware._csp_nonce_post_response)


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, with the policy of the settings built once instead of twice per
    response. A response whose request used its nonce (GraphiQL), or whose view changed the policy
    (django-csp's decorators, which set attributes on the response), takes django-csp's own path,
    which builds it for that response."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if request.__dict__.get("_csp_nonce") is not None or not _CSP_OVERRIDES.isdisjoint(response.__dict__):
            return super().process_response(request, response)
        if _DEBUG() and response.status_code in (500, 404):
            return response  # Django's debug pages, as django-csp leaves them
        for header, policy, prefixes in _csp_headers or _settings_csp_headers():
            if header not in response and not request.path_info.startswith(prefixes):
                response[header] = policy
        request.csp_nonce = _NONCE_AFTER_RESPONSE  # type: ignore[attr-defined]
        return response


class CorsMiddleware(BaseCorsMiddleware):
    """django-cors-headers' middleware, without building `request.headers` (every header of the
    request, parsed into a new mapping) for a request that sends no `Origin`: an API client, a
    server, a same-origin page's GET. Such a request gets what the library gives it, `Vary: origin`
    on the paths of CORS_URLS_REGEX and nothing else; a request with an `Origin` (and every
    preflight, which has one) takes the library's own path."""

    def is_enabled(self, request: HttpRequest) -> bool:
        """The library's, the pattern compiled once (`_CORS_URLS`)."""
        return bool(_CORS_URLS().match(request.path_info)) or self.check_signal(request)

    def add_response_headers(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if "HTTP_ORIGIN" in request.META:
            return super().add_response_headers(request, response)
        enabled = getattr(request, "_cors_enabled", None)  # set by check_preflight, as the library reads it
        if enabled if enabled is not None else self.is_enabled(request):
            response.headers["Vary"] = _vary_with_origin(response.headers.get("Vary"))
        return response


@functools.lru_cache(maxsize=64)
def _vary_with_origin(vary: str | None) -> str:
    """The Vary header that `patch_vary_headers(response, ("origin",))` gives a response whose Vary is
    `vary` (None: none), made by Django's function once per value instead of on every response (it
    splits, lowercases and joins the header anew): responses carry few distinct Vary headers."""
    response = HttpResponseBase()
    if vary is not None:
        response.headers["Vary"] = vary
    patch_vary_headers(response, ("origin",))
    return response.headers["Vary"]


def api_client_call(request: HttpRequest) -> bool:
    """True for a REST or GraphQL API call that brings its own credential (`Authorization` or
    `X-API-Key`) and asks for no HTML page: such a call never uses the session's user or messages.
    The credential decides alone (`core.auth.authenticate_credentials`, which REST's
    `CredentialsAuthentication` and GraphQL's `identify` call), and a refused credential is never
    passed over to the session; DRF and the GraphQL view set `request.user` to the credential's
    actor. Everything else (the admin, the browsable API, GraphiQL's page, a call with only a session
    cookie) goes through the three middleware below: the session, its user and messages. CSRF stays
    Django's own for every request: the deploy check looks for it by name."""
    meta = request.META
    path = request.path_info
    return (
        ("HTTP_AUTHORIZATION" in meta or "HTTP_X_API_KEY" in meta)
        and (path.startswith(_REST_PATH) or path == _GRAPHQL_PATH)
        and "text/html" not in meta.get("HTTP_ACCEPT", "")
    )


_REST_PATH = "/" + REST_PREFIX
_GRAPHQL_PATH = "/" + GRAPHQL_PATH
_PRIVATE_PATHS = ("/api/", _GRAPHQL_PATH)


class _BrowserOnly(MiddlewareMixin):
    """A MiddlewareMixin middleware that an API client's call passes straight through
    (`api_client_call`). Under ASGI both branches return an awaitable (the next layer's, or Django's
    async path), which the handler awaits."""

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if api_client_call(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, BaseSessionMiddleware):
    """Django's session, for every request but an API client's call, which never reads it: loading
    the store and checking it on the way out cost ~2 % of a cached GET (its cookie is parsed, its
    serializer imported, an AttributeError caught)."""


class AuthenticationMiddleware(_BrowserOnly, BaseAuthenticationMiddleware):
    """Django's `request.user` from the session, for every request but an API client's call (DRF
    sets it to the credential's actor)."""


class MessageMiddleware(_BrowserOnly, BaseMessageMiddleware):
    """Django's messages middleware, with the storage made only when a request uses it (the admin
    and the browsable API's pages do; an API call never does). Django's builds the session and
    cookie storages for every request, and updates them on the way out, to find nothing to store."""

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:  # type: ignore[attr-defined]
            return response  # never used: nothing to store
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


class PrivateAPIResponsesMiddleware:
    """`Cache-Control: private, no-cache` on every answer under /api/ and /graphql/ that sets none.

    What these answer depends on who asks, and nothing else in a response says so: a 200 without
    Cache-Control is one a shared cache (a CDN, Varnish, a caching proxy) may store and hand to the
    next client asking for the same URL. Only `Authorization` keeps a response out of a shared cache by
    default (RFC 9111, 3.5), not `X-API-Key`. `private` forbids shared caches to store them; `no-cache`
    lets a client keep one but makes it ask again before using it, with `If-None-Match` where an ETag
    came, which a 304 answers without the body. An answer that sets its own keeps it (the ReDoc
    bundle's `public`; the event stream sets the same)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path_info.startswith(_PRIVATE_PATHS) and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "private, no-cache"
        return response


class LengthRequiredMiddleware:
    """411 Length Required for a request whose body comes without a `Content-Length` (sent with
    `Transfer-Encoding: chunked`, or any other transfer coding).

    Django reads exactly CONTENT_LENGTH bytes of a body; WSGI servers such as granian pass a chunked
    body through without one, so Django would see an empty body: a PATCH would answer 200 having
    changed nothing. Refusing it says so instead (docs/api/rest.md, "Headers"). The last layer, so the
    refusal is logged, counted and given the security, CSP and CORS headers like any other answer."""

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
