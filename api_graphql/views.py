"""The GraphQL endpoint: identity and rate limit per request, then strawberry runs the operation.

Django's middleware does not authenticate API clients and DRF's classes do not run here, so the
view calls the same `core.auth` and `core.ratelimit` functions the REST hooks call.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import GraphQLView as StrawberryView

from api_graphql.context import Context
from api_graphql.errors import error_payload
from api_graphql.schema import current_schema
from core import ratelimit
from core.auth import actor_from_user, authenticate_credentials
from core.encoding import loads_bounded
from core.errors import ApplicationError, NotAuthenticated, RateLimited
from core.types import Actor

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _csrf_passes(request: HttpRequest) -> bool:
    """Django's CSRF check, as DRF's SessionAuthentication runs it."""
    check = CsrfViewMiddleware(lambda _request: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {}) is None  # type: ignore[arg-type]


def identify(request: HttpRequest) -> tuple[Actor | None, ApplicationError | None]:
    """Who sends the request: a Bearer token or API key, else a same-origin session (CSRF-checked,
    so a cookie alone never authenticates a request from another origin), else nobody."""
    try:
        actor = authenticate_credentials(
            authorization=request.META.get("HTTP_AUTHORIZATION"), api_key=request.META.get("HTTP_X_API_KEY")
        )
    except NotAuthenticated as exc:
        return None, exc
    if actor is not None:
        return actor, None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None, None
    if request.method not in _SAFE_METHODS and not _csrf_passes(request):
        return None, NotAuthenticated("A session needs its CSRF token; API clients send a token or an API key.")
    return actor_from_user(user), None


def _rate_limited(decision: ratelimit.Decision) -> HttpResponse:
    message, extensions = error_payload(RateLimited(retry_after=decision.retry_after))
    body = {"data": None, "errors": [{"message": message, "extensions": extensions}]}
    return HttpResponse(
        json.dumps(body),
        status=429,
        content_type="application/json",
        headers={"Retry-After": str(decision.retry_after)},
    )


@method_decorator(csrf_exempt, name="dispatch")  # sessions are CSRF-checked in identify(); tokens need none
class GraphQLView(StrawberryView):
    api_protocol = "graphql"  # the protocol label of metrics and access log lines (observability.middleware)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self.schema = current_schema()
        self.graphql_ide = "graphiql" if settings.GRAPHIQL_ENABLED else None
        actor, auth_error = identify(request)
        self._identity = (actor, auth_error)
        if actor is not None:
            request.user = actor  # type: ignore[assignment]  # for the access log
            decision = ratelimit.hit("user", f"user:{actor.id}")
        else:
            ip = ratelimit.client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
            decision = ratelimit.hit("anon", f"ip:{ip}")
        request.rate_limit = decision  # type: ignore[attr-defined]  # RateLimit-* headers
        if not decision.allowed:
            return _rate_limited(decision)
        # The metrics' endpoint label until OperationName names the operation that runs; a request
        # refused before any operation is chosen (no query, an unknown operationName) keeps it.
        request.api_endpoint = "invalid"  # type: ignore[attr-defined]
        return super().dispatch(request, *args, **kwargs)

    def decode_json(self, data: str | bytes) -> object:
        """The body and GET `variables` with a nesting limit: deeper is HTTP 400 "Unable to parse
        request body as JSON", never a RecursionError (`core.encoding.loads_bounded`)."""
        return loads_bounded(data)

    def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:  # type: ignore[override]
        actor, auth_error = self._identity
        return Context(request=request, response=response, actor=actor, auth_error=auth_error)
