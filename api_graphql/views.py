"""The GraphQL endpoint: identity and rate limit per request, then strawberry runs the operation.

Django's middleware does not authenticate API clients and DRF's classes do not run here, so the
view calls the same `core.auth` and `core.ratelimit` functions the REST hooks call.
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import GraphQLView as StrawberryView
from strawberry.django.views import TemporalHttpResponse
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from api_graphql.context import Context
from api_graphql.errors import error_payload
from api_graphql.schema import current_schema
from core import ratelimit
from core.auth import actor_from_user, authenticate_credentials
from core.encoding import loads_bounded
from core.errors import ApplicationError, InvalidInput, NotAuthenticated, RateLimited
from core.types import Actor
from tasks.filters import single_values

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# The response media types (GraphQL over HTTP), application/json first: a client that accepts both
# equally (`*/*`, no Accept at all) gets application/json, the type every client understands.
_MEDIA_TYPES = ["application/json", GRAPHQL_RESPONSE_JSON]


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


def _is_request_error(result: ExecutionResult) -> bool:
    """An error that kept the operation from running (the document does not parse or validate, a
    variable does not fit, no operation to run): no data, and no error names a field's path."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(error.path is None for error in errors)


def _rate_limited(decision: ratelimit.Decision, media_type: str) -> HttpResponse:
    message, extensions = error_payload(RateLimited(retry_after=decision.retry_after))
    body: dict[str, Any] = {"errors": [{"message": message, "extensions": extensions}]}
    if media_type != GRAPHQL_RESPONSE_JSON:
        body = {"data": None, **body}
    return HttpResponse(
        json.dumps(body),
        status=429,
        content_type=media_type,
        headers={"Retry-After": str(decision.retry_after)},
    )


@method_decorator(csrf_exempt, name="dispatch")  # sessions are CSRF-checked in identify(); tokens need none
class GraphQLView(StrawberryView):
    api_protocol = "graphql"  # the protocol label of metrics and access log lines (observability.middleware)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self.schema = current_schema()
        self._media_type = request.get_preferred_type(_MEDIA_TYPES) or "application/json"
        self._request_error = False
        self.graphql_ide = "graphiql" if settings.GRAPHIQL_ENABLED else None
        actor, auth_error = identify(request)
        self._identity = (actor, auth_error)
        if actor is not None:
            request.user = actor  # type: ignore[assignment]  # for the access log
        ip = ratelimit.client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
        decision = ratelimit.hit_caller(actor.id if actor is not None else None, ip)
        request.rate_limit = decision  # type: ignore[attr-defined]  # RateLimit-* headers
        if not decision.allowed:
            return _rate_limited(decision, self._media_type)
        # The metrics' endpoint label until OperationName names the operation that runs; a request
        # refused before any operation is chosen (no query, an unknown operationName) keeps it.
        request.api_endpoint = "invalid"  # type: ignore[attr-defined]
        return super().dispatch(request, *args, **kwargs)

    def process_result(self, request: HttpRequest, result: ExecutionResult) -> GraphQLHTTPResponse:
        """application/json: every result as strawberry renders it (HTTP 200). A client that prefers
        application/graphql-response+json gets a request error as HTTP 400 with no `data` entry,
        as the GraphQL-over-HTTP spec asks (docs/api/graphql.md, "Requests")."""
        response_data = super().process_result(request, result)
        if self._media_type == GRAPHQL_RESPONSE_JSON and _is_request_error(result):
            self._request_error = True
            response_data.pop("data", None)
        return response_data

    def create_response(  # type: ignore[override]
        self, response_data: GraphQLHTTPResponse, sub_response: TemporalHttpResponse
    ) -> HttpResponseBase:
        response = super().create_response(response_data, sub_response)
        if self._media_type == GRAPHQL_RESPONSE_JSON:
            response["Content-Type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            if self._request_error:
                response.status_code = 400
        return response

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        """GET: each parameter once (`?query=A&query=B` is HTTP 400, not the last one run), the rule
        of REST's query string (`tasks.filters.single_values`)."""
        try:
            single_values(dict(self.request.GET.lists()))
        except InvalidInput as exc:
            raise HTTPException(400, f"Give each parameter once: {', '.join(exc.extra['fields'])}.") from None
        return super().parse_query_params(params)

    def decode_json(self, data: str | bytes) -> object:
        """The body and GET `variables` with a nesting limit: deeper is HTTP 400 "Unable to parse
        request body as JSON", never a RecursionError (`core.encoding.loads_bounded`)."""
        return loads_bounded(data)

    def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:  # type: ignore[override]
        actor, auth_error = self._identity
        return Context(request=request, response=response, actor=actor, auth_error=auth_error)
