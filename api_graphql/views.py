"""The GraphQL endpoint: identity and rate limit per request, then strawberry runs the operation.

Django's middleware does not authenticate API clients and DRF's classes do not run here, so the
view calls the same `core.auth` and `core.ratelimit` functions the REST hooks call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, ItemsView, Iterator, Mapping
from typing import Any

from cross_web import DjangoHTTPRequestAdapter, HTTPException
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import HttpHeaders, MediaType
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import classonlymethod
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import GraphQLView as StrawberryView
from strawberry.django.views import TemporalHttpResponse
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from api_graphql.context import Context
from api_graphql.errors import error_payload
from api_graphql.execution import JSON_ENCODER, encode_json
from api_graphql.schema import current_schema
from core import ratelimit
from core.auth import actor_from_user, authenticate_credentials
from core.encoding import loads_bounded
from core.errors import (
    ApplicationError,
    InvalidInput,
    MalformedRequest,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    RateLimited,
    UnsupportedMediaType,
    translate,
)
from core.headers import QuickHeaders
from core.problems import PROBLEM_CONTENT_TYPE, problem_of
from core.types import Actor
from tasks.filters import single_values

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# The response media types (GraphQL over HTTP), application/json first: a client that accepts both
# equally (`*/*`, no Accept at all) gets application/json, the type every client understands.
_MEDIA_TYPES = ["application/json", GRAPHQL_RESPONSE_JSON]


def _specificity(accepted: MediaType, media_type: str) -> int | None:
    """How specifically the range `accepted` names `media_type`: 2 for the type itself, 1 for
    `application/*`, 0 for `*/*`; None when it does not name it. Parameters play no part."""
    main_type, _, sub_type = media_type.partition("/")
    accepted_main, accepted_sub = accepted.main_type.lower(), accepted.sub_type.lower()
    if (accepted_main, accepted_sub) == (main_type, sub_type):
        return 2
    if (accepted_main, accepted_sub) == (main_type, "*"):
        return 1
    return 0 if (accepted_main, accepted_sub) == ("*", "*") else None


# The answers of `_preferred_media_type` per Accept header: clients send a handful of them.
_media_type_of: dict[str | None, str] = {}
MEDIA_TYPES_REMEMBERED = 256


def preferred_media_type(accept: str | None) -> str:
    """`_preferred_media_type(accept)`, remembered per header value (a pure function of it)."""
    media_type = _media_type_of.get(accept)
    if media_type is None:
        media_type = _preferred_media_type(accept)
        if len(_media_type_of) >= MEDIA_TYPES_REMEMBERED:
            _media_type_of.clear()
        _media_type_of[accept] = media_type
    return media_type


def _preferred_media_type(accept: str | None) -> str:
    """The response media type for this `Accept` (RFC 9110 §12.5.1): each type takes the quality of
    the most specific range that names it, parameters other than `q` ignored (so
    `application/graphql-response+json; charset=utf-8` names the type), and the higher quality wins;
    on a tie, or when no range names either, application/json. Django's `get_preferred_type` would
    match a range with parameters only to a type offered with the very same ones."""
    ranges = [MediaType(token) for token in (accept or "*/*").split(",") if token.strip()]
    chosen, best = _MEDIA_TYPES[0], 0.0
    for media_type in _MEDIA_TYPES:
        named = [
            (specificity, accepted.quality)
            for accepted in ranges
            if (specificity := _specificity(accepted, media_type)) is not None
        ]
        if named and (quality := max(named)[1]) > best:
            chosen, best = media_type, quality
    return chosen


def _csrf_passes(request: HttpRequest) -> bool:
    """Django's CSRF check, as DRF's SessionAuthentication runs it."""
    check = CsrfViewMiddleware(lambda _request: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {}) is None  # type: ignore[arg-type]


def identify(request: HttpRequest) -> tuple[Actor | None, ApplicationError | None]:
    """Who sends the request: a Bearer token or API key, else a same-origin session (CSRF-checked,
    so a cookie alone never authenticates a request from another origin), else nobody.

    A credential that cannot be checked because the database is down (an API key not cached yet, a
    session) is the error it stands for (`core.errors.translate`: UNAVAILABLE), raised by every field
    that needs the caller, as REST answers 503; never an internal error."""
    try:
        return _identify(request)
    except Exception as exc:
        error = translate(exc)
        if error is None:
            raise
        return None, error


def _identify(request: HttpRequest) -> tuple[Actor | None, ApplicationError | None]:
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


def _transport_error(exc: HTTPException) -> ApplicationError:
    """strawberry's refusal of the HTTP request itself, as the row of the one table it stands for
    (docs/api/errors.md, "Errors of one protocol only"): a method other than GET and POST, or a
    mutation over GET (the GraphQL-over-HTTP spec asks for 405 there too), is `method_not_allowed`;
    the GraphiQL page while it is off is `not_found`; every other refusal (the body is not JSON, no
    query, a batch, an `operationName` that names no operation, `variables` that are not an object)
    is `malformed_request`: the request is not a GraphQL request, with strawberry's reason as the
    detail."""
    if exc.status_code == 405 or isinstance(exc.__cause__, InvalidOperationTypeError):
        return MethodNotAllowed(exc.reason)
    if exc.status_code == 404:
        return NotFound()
    return MalformedRequest(exc.reason)


def _problem_response(error: ApplicationError, headers: dict[str, str] | None = None) -> JsonResponse:
    """RFC 9457 problem details, as REST answers the same rows (core.problems)."""
    status_code, body, problem_headers = problem_of(error)
    return JsonResponse(
        body, status=status_code, content_type=PROBLEM_CONTENT_TYPE, headers={**problem_headers, **(headers or {})}
    )


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


class _MetaHeaders(Mapping[str, str]):
    """A request's headers as Django's `request.headers` names them, read from `request.META` when
    asked: looking one up is one dict lookup, and iterating parses the names one at a time, so a
    search stops where it finds its header. Django's `request.headers` parses every header into a new
    mapping first, where strawberry looks for one (`Accept`: the GraphiQL page, a streaming request).
    WSGI servers give the body's type and length as CONTENT_TYPE and CONTENT_LENGTH (PEP 3333); one
    that also set HTTP_CONTENT_TYPE would have Content-Type named twice here, where Django's mapping
    keeps the last: strawberry iterates only to find `Accept`."""

    __slots__ = ("meta",)

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self.meta = meta

    def __getitem__(self, name: str) -> str:
        return self.meta[HttpHeaders.to_wsgi_name(name)]

    def get(self, name: str, default: Any = None) -> Any:
        return self.meta.get(HttpHeaders.to_wsgi_name(name), default)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _value in self.items())

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def items(self) -> ItemsView[str, str]:
        return _MetaItems(self)


class _MetaItems(ItemsView[str, str]):
    """The (name, value) pairs of `_MetaHeaders`, in one pass over META (strawberry looks for
    `Accept` among them)."""

    _mapping: _MetaHeaders

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for key, value in self._mapping.meta.items():
            if name := HttpHeaders.parse_header_name(key):
                yield name, value


class _RequestAdapter(DjangoHTTPRequestAdapter):
    """strawberry's view of the Django request, with its headers read on demand (`_MetaHeaders`)."""

    @property
    def headers(self) -> Mapping[str, str]:
        return _MetaHeaders(self.request.META)


class _SubResponse(TemporalHttpResponse):
    """strawberry's sub-response (what resolvers may set: headers, a status, cookies) as its
    `JsonResponse({})` makes it, without encoding `{}` on every request, and with QuickHeaders: its
    headers are copied onto the response."""

    def __init__(self) -> None:
        HttpResponse.__init__(self, b"{}", content_type="application/json")
        self.headers = QuickHeaders.adopt(self.headers)


class GraphQLView(StrawberryView):
    api_protocol = "graphql"  # the protocol label of metrics and access log lines (observability.middleware)
    request_adapter_class = _RequestAdapter

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        """The view, CSRF-exempt: sessions are CSRF-checked in identify(), tokens need none. Exempted
        once here, as `csrf_exempt(view)` in a URLconf does (`method_decorator` on `dispatch` would
        wrap the method again on every request)."""
        return csrf_exempt(super().as_view(**initkwargs))

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self.schema = current_schema()
        self._media_type = preferred_media_type(request.META.get("HTTP_ACCEPT"))
        self._request_error = False
        self.graphql_ide = "graphiql" if settings.GRAPHIQL_ENABLED else None
        actor, auth_error = identify(request)
        self._identity = (actor, auth_error)
        if actor is not None:
            request.user = actor  # type: ignore[assignment]  # for the access log
        # A credential that could not be checked (the database is down) is nobody's: not counted as
        # the address's anonymous caller, as REST and gRPC do not count it; refused credentials are.
        if auth_error is None or isinstance(auth_error, NotAuthenticated):
            ip = ratelimit.client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
            decision = ratelimit.hit_caller(actor.id if actor is not None else None, ip)
            request.rate_limit = decision  # type: ignore[attr-defined]  # RateLimit-* headers
            if not decision.allowed:
                return _rate_limited(decision, self._media_type)
        # The metrics' endpoint label until OperationName names the operation that runs; a request
        # refused before any operation is chosen (no query, an unknown operationName) keeps it.
        request.api_endpoint = "invalid"  # type: ignore[attr-defined]
        return super().dispatch(request, *args, **kwargs)

    def run(self, request: HttpRequest, context: Any = UNSET, root_value: Any = UNSET) -> HttpResponseBase:
        """strawberry's run, with the errors of the HTTP transport as problem details instead of its
        text/plain answers. A POST body must be application/json (415 otherwise); bytes that are not
        UTF-8 are a body that is not JSON, not an internal error."""
        try:
            if request.method == "POST" and request.content_type != "application/json":
                return _problem_response(UnsupportedMediaType("A GraphQL POST body must be application/json."))
            return super().run(request, context, root_value)
        except HTTPException as exc:
            error = _transport_error(exc)
        except UnicodeDecodeError:
            error = MalformedRequest("The request body is not UTF-8, so not JSON.")
        return _problem_response(error, {"Allow": "GET, POST"} if isinstance(error, MethodNotAllowed) else None)

    def process_result(self, request: HttpRequest, result: ExecutionResult) -> GraphQLHTTPResponse:
        """application/json: every result as strawberry renders it (HTTP 200). A client that prefers
        application/graphql-response+json gets a request error as HTTP 400 with no `data` entry,
        as the GraphQL-over-HTTP spec asks (docs/api/graphql.md, "Requests")."""
        response_data = super().process_result(request, result)
        if self._media_type == GRAPHQL_RESPONSE_JSON and _is_request_error(result):
            self._request_error = True
            response_data.pop("data", None)
        return response_data

    def get_sub_response(self, request: HttpRequest) -> TemporalHttpResponse:
        return _SubResponse()

    def create_response(  # type: ignore[override]
        self, response_data: GraphQLHTTPResponse, sub_response: TemporalHttpResponse
    ) -> HttpResponseBase:
        response = super().create_response(response_data, sub_response)
        # The headers every layer then sets and asks about, and the server lists, at a dict's cost.
        response.headers = QuickHeaders.adopt(response.headers)
        if self._media_type == GRAPHQL_RESPONSE_JSON:
            response["Content-Type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            if self._request_error:
                response.status_code = 400
        return response

    def execute_single(
        self,
        request: HttpRequest,
        request_adapter: Any,
        sub_response: TemporalHttpResponse,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """The operation name the request sent goes into the context: a document of several operations
        needs one (api_graphql.schema.OperationChoice)."""
        context.operation_name = request_data.operation_name
        return super().execute_single(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        """GET: each parameter once (`?query=A&query=B` is HTTP 400, not the last one run), the rule
        of REST's query string (`tasks.filters.single_values`)."""
        try:
            single_values(dict(self.request.GET.lists()))
        except InvalidInput as exc:
            raise HTTPException(400, f"Give each parameter once: {', '.join(exc.extra['fields'])}.") from None
        return super().parse_query_params(params)

    def parse_json(self, data: str | bytes) -> Any:
        """strawberry's, refusing JSON that is not an object (or a list: a batch, which strawberry
        refuses itself) as a request that is not a GraphQL request: strawberry would look `query` up
        in a number (a 500). The same for GET's `variables` and `extensions`, which are objects too."""
        value = super().parse_json(data)
        if not isinstance(value, dict | list):
            raise HTTPException(400, "A GraphQL request, and its variables and extensions, are JSON objects.")
        return value

    def decode_json(self, data: str | bytes) -> object:
        """The body and GET `variables` with a nesting limit: deeper is HTTP 400 "Unable to parse
        request body as JSON", never a RecursionError (`core.encoding.loads_bounded`)."""
        return loads_bounded(data)

    def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:  # type: ignore[override]
        actor, auth_error = self._identity
        self._context = Context(request=request, response=response, actor=actor, auth_error=auth_error)
        return self._context

    def encode_json(self, data: object) -> str:
        """strawberry's encoding (`json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))`),
        with one encoder for every response; a result that may hold tasks completed with their JSON
        text (api_graphql.execution.Rendered) has that text written as it is."""
        context = getattr(self, "_context", None)
        if context is not None and context.holds_rendered:
            return encode_json(data)
        return JSON_ENCODER.encode(data)
