"""REST adapters: parse the request, call one service or selector, render. Nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from operator import itemgetter
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.urls import reverse
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views

from api_rest.auth import CredentialsAuthentication, actor_of
from api_rest.events import EVENT_STREAM, EventStreamNegotiation, EventStreamResponse, event_stream_head
from api_rest.responses import JsonBytesResponse
from api_rest.schema import (
    ALWAYS,
    PROBLEM_MEDIA_TYPE,
    WITH_BODY,
    etag_header,
    problems,
    response_header,
    response_headers,
)
from api_rest.serializers import (
    ProblemSerializer,
    TaskInputSerializer,
    TaskOutputSerializer,
    TaskPageSerializer,
    TokenObtainInputSerializer,
    TokenPairSerializer,
    TokenRefreshInputSerializer,
    TokenRevokeInputSerializer,
    task_to_json,
)
from core.auth import authenticate_stream
from core.cache import cache_stats
from core.errors import InvalidInput, NotFound
from core.memo import RenderedMemo
from tasks.cache import PAGE_MEMO_SIZE, CachedPage, task_from_row, task_to_row
from tasks.events import event_filter, subscribe
from tasks.filters import FILTER_NAMES, single_values
from tasks.models import Task
from tasks.pagination import DEFAULT_LIMIT, MAX_LIMIT, ORDERINGS, parse_limit
from tasks.selectors import ROW_INDEX, task_get, task_get_row, task_list_rows
from tasks.services import task_create_idempotent, task_delete, task_replace, task_update

# The token endpoints have no credentials to check: their 401 is a bad password or token, no challenge.
_TOKEN_HEADERS = response_headers(challenge=False)
_HEADERS = response_headers(challenge=True)


class BaseApi(APIView):
    """Rate limits count before permissions, and a bad credential counts too, so floods of bad
    credentials are limited per client. DRF checks permissions before throttles, so the throttles
    run as soon as authentication has decided; `RateLimitThrottle` decides once per request, which
    makes DRF's own later check a no-op."""

    api_protocol = "rest"  # the protocol label of metrics and access log lines (observability.middleware)

    # DRF's default_response_headers, per view class, number of renderers (as_view() may change
    # renderer_classes, never the handler methods that make Allow) and whether the view has `head`
    # (Django's View.setup() gives a view with `get` one).
    _default_headers: dict[tuple[type[APIView], bool, bool], dict[str, str]] = {}

    @property
    def default_response_headers(self) -> dict[str, str]:
        """DRF's (`Allow`, and `Vary: Accept` with several renderers), made once instead of on every
        request: DRF looks every HTTP method up on the view to spell `Allow`."""
        key = (type(self), len(self.renderer_classes) > 1, hasattr(self, "head"))
        headers = self._default_headers.get(key)
        if headers is None:
            headers = self._default_headers[key] = super().default_response_headers
        return dict(headers)  # a view may change its own

    _throttles_checked = False
    _unknown_format = False

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        """DRF's, but a `?format=` that names no renderer, or an empty one, is a bad query parameter:
        DRF answers the first 404 before the credentials are judged, which reads as "no such task",
        and ignores the second. Both are answered in JSON, and refused by `initial` once
        authentication, the permissions and the rate limit have passed (docs/api/errors.md)."""
        if not force and request._request.META.get("QUERY_STRING"):  # no query string, no QueryDict
            self._unknown_format = request.query_params.get(self.settings.URL_FORMAT_OVERRIDE) == ""
        if not self._unknown_format:
            try:
                return super().perform_content_negotiation(request, force)
            except Http404:
                self._unknown_format = True
        renderer = self.get_renderers()[0]  # JSON, as every problem is
        return renderer, renderer.media_type

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if self._unknown_format:
            formats = ", ".join(sorted(renderer.format for renderer in self.get_renderers()))
            raise InvalidInput.for_fields({"format": [f"Must be one of: {formats}."]})

    def perform_authentication(self, request: Request) -> None:
        try:
            super().perform_authentication(request)
        finally:
            self.check_throttles(request)

    def check_throttles(self, request: Request) -> None:
        """DRF's, once per request: `initial` asks again after the permissions, and the answer
        cannot have changed (a throttle that refused has raised already)."""
        if not self._throttles_checked:
            self._throttles_checked = True
            super().check_throttles(request)


# -- auth ---------------------------------------------------------------------------------------------


@extend_schema_view(
    post=extend_schema(
        parameters=_TOKEN_HEADERS, responses={200: TokenPairSerializer, **problems(*ALWAYS, *WITH_BODY, 401)}
    )
)
class TokenObtainApi(jwt_views.TokenObtainPairView):
    """Username and password → an access token (short-lived) and a refresh token."""

    api_protocol = "rest"
    rate_limit_scope = "token"
    serializer_class = TokenObtainInputSerializer


@extend_schema_view(
    post=extend_schema(
        parameters=_TOKEN_HEADERS, responses={200: TokenPairSerializer, **problems(*ALWAYS, *WITH_BODY, 401)}
    )
)
class TokenRefreshApi(jwt_views.TokenRefreshView):
    """A refresh token → a new access token and a new refresh token; the old one stops working."""

    api_protocol = "rest"
    rate_limit_scope = "token"
    serializer_class = TokenRefreshInputSerializer


class TokenRevokeApi(jwt_views.TokenBlacklistView):
    """Revoke a refresh token (log out)."""

    api_protocol = "rest"
    rate_limit_scope = "token"
    serializer_class = TokenRevokeInputSerializer

    @extend_schema(
        parameters=_TOKEN_HEADERS,
        responses={204: OpenApiResponse(description="Revoked."), **problems(*ALWAYS, *WITH_BODY, 401)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- tasks ---------------------------------------------------------------------------------------------

_LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=["todo", "in_progress", "completed"]),
    OpenApiParameter("priority", str, enum=["low", "medium", "high"]),
    OpenApiParameter("completed", str, enum=["true", "false", "1", "0"]),
    OpenApiParameter(
        "tag", {"type": "string", "maxLength": 50}, description="Compared trimmed and lowercased; blank: any."
    ),
    OpenApiParameter("due_before", OpenApiTypes.DATETIME, description="Strictly before; with an offset."),
    OpenApiParameter("due_after", OpenApiTypes.DATETIME, description="Strictly after; with an offset."),
    OpenApiParameter(
        "search",
        {"type": "string", "maxLength": 200},
        description="Case-insensitive text in title or description; blank lists everything.",
    ),
    OpenApiParameter("ordering", str, enum=list(ORDERINGS), description="Default -created_at."),
    OpenApiParameter(
        "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, description=f"Default {DEFAULT_LIMIT}."
    ),
    OpenApiParameter(
        "cursor",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
        description="Opaque: the cursor of a `next` or `previous` link. It works only with the `ordering` "
        "it came from (the default when none was given); any other cursor is 400.",
    ),
]


_LIST_PARAMETER_NAMES = FILTER_NAMES | {"ordering", "limit", "cursor", "format"}


def _list_arguments(request: Request) -> dict[str, Any]:
    if unknown := sorted(set(request.query_params) - _LIST_PARAMETER_NAMES):
        # A misspelt filter must not quietly list everything.
        raise InvalidInput.for_fields({name: ["Unknown query parameter."] for name in unknown})
    params = single_values(dict(request.query_params.lists()))  # ?status=a&status=b is refused, not the last
    return {
        "filters": {name: params[name] for name in FILTER_NAMES if name in params},
        "ordering": params.get("ordering"),
        "limit": parse_limit(params.get("limit")),
        "cursor": params.get("cursor"),
    }


# The JSON of each task as the list and the detail render it, reused while the task's row is unchanged
# (core.memo): a cache hit serves stored bytes instead of rendering the task again.
_TASK_JSON: RenderedMemo[bytes] = RenderedMemo("rest.task_json")
_ID, _VERSION = ROW_INDEX["id"], ROW_INDEX["version"]
_row_id = itemgetter(_ID)
_JSON = JSONRenderer()


def _plain_json(request: Request) -> bool:
    """True when the response is DRF's JSONRenderer output without options (no `indent`): then the
    view may answer stored bytes. The browsable API, `?format=api` and `indent=` go through DRF."""
    return type(request.accepted_renderer) is JSONRenderer and request.accepted_media_type == JSONRenderer.media_type


def _task_json(task: Task) -> bytes:
    """`task_to_json(task)` rendered by DRF's JSONRenderer, from the memo when the row is unchanged."""
    row = task_to_row(task)
    return _TASK_JSON.get(row[_ID], row, lambda: _JSON.render(task_to_json(task)))


def _render_row(row: tuple[Any, ...]) -> bytes:
    return _JSON.render(task_to_json(task_from_row(row)))


def _row_json(row: tuple[Any, ...]) -> bytes:
    """`_task_json` of the task a row stands for (tasks.selectors.ROW_INDEX); a model only to render it."""
    return _TASK_JSON.get(row[_ID], row, lambda: _render_row(row))


def _results_json(rows: Iterable[tuple[Any, ...]]) -> bytes:
    """The items of a page's `results` array: `_row_json` of each row, in order, comma-joined."""
    return b",".join(_TASK_JSON.get_many(rows, _row_id, _render_row))


# The items of each cached page, remembered while the page is unchanged: a hit on a list page costs
# neither decoding its rows nor looking each one up.
_PAGE_JSON: RenderedMemo[bytes] = RenderedMemo("rest.page_json", size=PAGE_MEMO_SIZE)


def _json_value(value: str | None) -> bytes:
    return b"null" if value is None else _JSON.render(value)  # render(None) is b"" (no body), not null


@lru_cache(maxsize=1024)
def _link(url: str, cursor: str) -> str:
    """`url` with its cursor replaced: a pure function of both, remembered (it quotes every parameter)."""
    return replace_query_param(url, "cursor", cursor)


@lru_cache(maxsize=1024)
def _link_json(url: str, cursor: str) -> bytes:
    """`_json_value(_link(url, cursor))`, remembered as `_link` is: a page's links are the same on
    every read of it, and rendering one is a json.dumps through DRF's encoder."""
    return _json_value(_link(url, cursor))


def _page_response(request: Request, page: CachedPage) -> HttpResponse:
    url = request._request.build_absolute_uri()  # DRF's request finds it only after an AttributeError
    if _plain_json(request):
        # The bytes DRF would render for the dict below: compact separators, the items in order.
        return JsonBytesResponse(
            b'{"results":['
            + page.rendered(_PAGE_JSON, _results_json)
            + b'],"next":'
            + (_link_json(url, page.next_cursor) if page.next_cursor else b"null")
            + b',"previous":'
            + (_link_json(url, page.previous_cursor) if page.previous_cursor else b"null")
            + b"}"
        )
    next_link = _link(url, page.next_cursor) if page.next_cursor else None
    previous_link = _link(url, page.previous_cursor) if page.previous_cursor else None
    return Response(
        {
            "results": [task_to_json(task_from_row(row)) for row in page.rows],
            "next": next_link,
            "previous": previous_link,
        }
    )


def _etag(task: Task) -> str:
    """The strong entity tag of this version of the task: its version, quoted."""
    return f'"{task.version}"'


def _task_response(request: Request, task: Task, status_code: int = status.HTTP_200_OK) -> HttpResponse:
    if _plain_json(request):
        return JsonBytesResponse(_task_json(task), status_code, {"ETag": _etag(task)})
    return Response(task_to_json(task), status=status_code, headers={"ETag": _etag(task)})


_MAX_VERSION_DIGITS = 10


def _version_of(tag: str) -> int | None:
    """The version a strong entity tag names ("3" → 3, as `_etag` spells it), or None: a weak tag
    (`W/"3"`) or any other spelling (`"03"`, `"x"`) can never match."""
    value = tag[1:-1] if len(tag) > 2 and tag[0] == tag[-1] == '"' else ""
    if not (value.isascii() and value.isdecimal()) or len(value) > _MAX_VERSION_DIGITS or value.startswith("0"):
        return None
    return int(value)


def _if_match_versions(request: Request) -> frozenset[int] | None:
    """If-Match → the versions the client accepts. None: no header, or `*` (any version). Every
    entity tag of the list counts (RFC 9110 §13.1.1: the condition is true when any of them
    matches, by strong comparison); an empty set when none can match (weak or malformed tags)."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = parse_etags(header)
    if tags == ["*"]:
        return None
    return frozenset(version for tag in tags if (version := _version_of(tag)) is not None)


def _not_modified(request: Request, etag: str) -> bool:
    header = request._request.META.get("HTTP_IF_NONE_MATCH")  # DRF's request.META costs an AttributeError
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


class TaskCollectionApi(BaseApi):
    @extend_schema(
        operation_id="tasks_list",
        parameters=[*_LIST_PARAMETERS, *_HEADERS],
        responses={200: TaskPageSerializer, **problems(*ALWAYS, 400, 401)},
    )
    def get(self, request: Request) -> HttpResponse:
        """The tasks you may see (managers: everybody's), one page at a time."""
        return _page_response(request, task_list_rows(actor=actor_of(request), **_list_arguments(request)))

    @extend_schema(
        operation_id="tasks_create",
        request=TaskInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                # 1 to 255 printable ASCII characters, no surrounding spaces (HTTP drops them), as a
                # pattern: with minLength/maxLength as well, schemathesis 4.32's coverage phase pairs
                # this header with the body `0` and calls it valid.
                {"type": "string", "pattern": r"^[!-~](?:[ -~]{0,253}[!-~])?$"},
                OpenApiParameter.HEADER,
                description="1 to 255 printable characters (anything else is 400 on `idempotency_key`), per "
                "user. A retry with the same body returns the first result (with `Idempotent-Replayed: true`); "
                "with another body it is 422.",
            ),
            *_HEADERS,
            etag_header(201),
            response_header(
                "Location", {"type": "string", "format": "uri"}, "The task's URL.", response=[201], required=True
            ),
            response_header(
                "Idempotent-Replayed",
                {"type": "string", "enum": ["true"]},
                "The stored result of an earlier request with the same `Idempotency-Key`.",
                response=[201],
            ),
        ],
        responses={201: TaskOutputSerializer, **problems(*ALWAYS, *WITH_BODY, 401, 403, 409, 422)},
    )
    def post(self, request: Request) -> HttpResponse:
        """Create a task you own."""
        payload = TaskInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        created = task_create_idempotent(
            actor=actor_of(request), data=payload.validated_data, idempotency_key=request.headers.get("Idempotency-Key")
        )
        task = created.task
        response = _task_response(request, task, status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(reverse("api_rest:task-detail", kwargs={"task_id": task.pk}))
        if created.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class TaskMineApi(BaseApi):
    @extend_schema(
        operation_id="tasks_mine",
        parameters=[*_LIST_PARAMETERS, *_HEADERS],
        responses={200: TaskPageSerializer, **problems(*ALWAYS, 400, 401)},
    )
    def get(self, request: Request) -> HttpResponse:
        """Only the tasks you own, whatever your role."""
        return _page_response(request, task_list_rows(actor=actor_of(request), mine=True, **_list_arguments(request)))


_IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description='The ETag you read, e.g. "3": the change applies only to that version, else 412. `*` or no '
    "header: any version. A weak or malformed tag never matches.",
)


class TaskDetailApi(BaseApi):
    @extend_schema(
        operation_id="tasks_retrieve",
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                str,
                OpenApiParameter.HEADER,
                description="ETags (a list, weak tags and `*` accepted): 304 when one names the current version.",
            ),
            *_HEADERS,
            etag_header(200, 304),
        ],
        responses={
            200: TaskOutputSerializer,
            304: OpenApiResponse(description="Not modified: the task is still at that version."),
            **problems(*ALWAYS, 401, 404),
        },
    )
    def get(self, request: Request, task_id: UUID) -> HttpResponse:
        """One task, with its version as ETag."""
        actor = actor_of(request)
        # A cache hit is answered from the cached row, without a model, as gRPC's GetTask is.
        row = task_get_row(actor=actor, task_id=str(task_id))
        if row is None:  # a miss: task_get reads the database and fills the cache
            row = task_to_row(task_get(actor=actor, task_id=task_id))
        etag = f'"{row[_VERSION]}"'  # _etag's spelling
        if _not_modified(request, etag):
            # No body whatever the representation asked for: a renderer would make the browsable
            # API's whole page for a 304.
            return HttpResponseNotModified(headers={"ETag": etag})
        if _plain_json(request):
            return JsonBytesResponse(_row_json(row), headers={"ETag": etag})
        return Response(task_to_json(task_from_row(row)), headers={"ETag": etag})

    @extend_schema(
        operation_id="tasks_partial_update",
        request=TaskInputSerializer,
        parameters=[_IF_MATCH, *_HEADERS, etag_header(200)],
        responses={200: TaskOutputSerializer, **problems(*ALWAYS, *WITH_BODY, 401, 403, 404, 412)},
    )
    def patch(self, request: Request, task_id: UUID) -> HttpResponse:
        """Change some fields."""
        payload = TaskInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        task = task_update(
            actor=actor_of(request),
            task_id=task_id,
            changes=payload.validated_data,
            expected_version=_if_match_versions(request),
        )
        return _task_response(request, task)

    @extend_schema(
        operation_id="tasks_update",
        request=TaskInputSerializer,
        parameters=[_IF_MATCH, *_HEADERS, etag_header(200)],
        responses={200: TaskOutputSerializer, **problems(*ALWAYS, *WITH_BODY, 401, 403, 404, 412)},
    )
    def put(self, request: Request, task_id: UUID) -> HttpResponse:
        """Replace every editable field; those left out go back to their defaults."""
        payload = TaskInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        task = task_replace(
            actor=actor_of(request),
            task_id=task_id,
            data=payload.validated_data,
            expected_version=_if_match_versions(request),
        )
        return _task_response(request, task)

    @extend_schema(
        operation_id="tasks_destroy",
        parameters=[_IF_MATCH, *_HEADERS],
        responses={204: OpenApiResponse(description="Deleted."), **problems(*ALWAYS, 401, 403, 404, 412)},
    )
    def delete(self, request: Request, task_id: UUID) -> Response:
        """Delete a task; with If-Match, only if it is still at that version."""
        task_delete(actor=actor_of(request), task_id=task_id, expected_version=_if_match_versions(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- live events --------------------------------------------------------------------------------------

_EVENT_PARAMETER_NAMES = frozenset({"status", "priority", "tag", "mine", "after"})
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}  # the spelling of the list's `completed`
_EVENT_ID = {"type": "string", "pattern": r"^[0-9]+-[0-9]+$", "maxLength": 64}

_EVENT_PARAMETERS = [
    OpenApiParameter("status", str, enum=["todo", "in_progress", "completed"]),
    OpenApiParameter("priority", str, enum=["low", "medium", "high"]),
    OpenApiParameter("tag", {"type": "string", "maxLength": 50}, description="Compared trimmed and lowercased."),
    OpenApiParameter(
        "mine",
        str,
        enum=list(_BOOLEANS),
        description="true: only your own tasks' events, whatever your role (as `GET tasks/me`).",
    ),
    OpenApiParameter(
        "after",
        _EVENT_ID,
        description="Resume after this event id, for clients that cannot send `Last-Event-ID`; "
        "`Last-Event-ID` wins when both are sent.",
    ),
    OpenApiParameter(
        "Last-Event-ID",
        _EVENT_ID,
        OpenApiParameter.HEADER,
        description="Resume after this event id: every later event you may see is sent first, once and in "
        "order; then the live ones. An id older than the log keeps starts with a `gap` event.",
    ),
    *response_headers(challenge=True, retry_after_on_429=False),
    response_header(
        "X-Accel-Buffering", {"type": "string", "enum": ["no"]}, "Proxies pass each event on at once.", response=[200]
    ),
]

_EVENT_STREAM_DESCRIPTION = """\
A stream of [Server-Sent Events](https://html.spec.whatwg.org/multipage/server-sent-events.html) \
(docs/api/rest.md, "Live events"). Each event is three lines and a blank one:

    id: 1764790000123-0
    event: created | updated | completed | deleted | gap
    data: {"id": "1764790000123-0", "type": "created", "task_id": "<uuid>", "owner_id": 1, "version": 1,
           "occurred_at": "2026-12-03T21:00:00.123456Z", "task": <the task as GET tasks/{id} answers it> | null}

(`data` is one line of JSON.) `task` is null on `deleted` and `gap`; a `gap` says events after the id you \
resumed from may be missing: read the list again. The stream starts with `retry: 5000`, sends \
`: keep-alive` when idle (every EVENTS_HEARTBEAT seconds, 15 by default) and, when the server ends it, \
`event: end` with `data: {"code": ..., "detail": ...}`: `not_authenticated` (the credential expired or was \
revoked), `slow_consumer` (more than EVENTS_BUFFER events behind; reconnect with the last id), \
`unavailable` (the server is stopping; reconnect with the last id)."""

_EVENT_STREAM_EXAMPLE = (
    "retry: 5000\n\n"
    "id: 1764790000123-0\nevent: deleted\n"
    'data: {"id":"1764790000123-0","type":"deleted","task_id":"8c7d8f6e-2b0a-4c55-9b7e-4f7a52a1c0de",'
    '"owner_id":1,"version":3,"occurred_at":"2026-12-03T21:00:00.123456Z","task":null}\n\n'
    ": keep-alive\n\n"
)


class TaskEventsApi(BaseApi):
    """Sync like every view, so DRF's checks run as everywhere; the stream it returns runs on the
    event loop of the ASGI server (api_rest/events.py)."""

    # A stream needs a credential it can check again while it lives (core.auth.authenticate_stream);
    # a session cookie alone is not one.
    authentication_classes = [CredentialsAuthentication]
    content_negotiation_class = EventStreamNegotiation
    renderer_classes = [JSONRenderer]  # the refusals before the stream; the stream is not rendered

    @extend_schema(
        operation_id="tasks_events",
        description=_EVENT_STREAM_DESCRIPTION,
        parameters=_EVENT_PARAMETERS,
        responses={
            (200, EVENT_STREAM): OpenApiResponse(
                {"type": "string"},
                description="The stream, open until the client or the server ends it.",
                examples=[OpenApiExample("A deletion, then an idle stream", _EVENT_STREAM_EXAMPLE)],
            ),
            **problems(401, 406, 503, 504),
            (400, PROBLEM_MEDIA_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="A query parameter unknown, repeated or invalid, or an event id that is not one "
                "(`invalid_input`, with `errors`).",
            ),
            (404, PROBLEM_MEDIA_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="Reached through the WSGI server, which does not hold streams open (`not_found`): "
                "streams are served by the ASGI server.",
            ),
            (429, PROBLEM_MEDIA_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="Over a rate limit (`rate_limited`, with `retry_after` and `Retry-After`), or too "
                "many open streams, yours or this server's (`too_many_streams`).",
            ),
        },
    )
    def get(self, request: Request) -> EventStreamResponse:
        """Live events of the tasks you may see, as Server-Sent Events."""
        subscription = subscribe(**_subscription_arguments(request), protocol="rest")
        return EventStreamResponse(subscription, heartbeat=settings.EVENTS_HEARTBEAT)

    def head(self, request: Request) -> HttpResponse:
        """The checks of GET, and the stream's headers, without opening a stream."""
        _subscription_arguments(request)
        return event_stream_head()


def _subscription_arguments(request: Request) -> dict[str, Any]:
    """`subscribe`'s arguments from the request, whose query parameters are refused as the list refuses
    them (unknown, repeated, invalid)."""
    if not isinstance(request._request, ASGIRequest):
        # A WSGI worker would be held for the life of the stream.
        raise NotFound("Live events are served by the ASGI server (config.asgi), not this WSGI server.")
    if unknown := sorted(set(request.query_params) - _EVENT_PARAMETER_NAMES):
        raise InvalidInput.for_fields({name: ["Unknown query parameter."] for name in unknown})
    params = single_values(dict(request.query_params.lists()))
    if "mine" in params and params["mine"] not in _BOOLEANS:
        raise InvalidInput.for_fields({"mine": [f"Must be one of: {', '.join(_BOOLEANS)}."]})
    filters = event_filter(
        status=params.get("status"),
        priority=params.get("priority"),
        tag=params.get("tag"),
        mine=_BOOLEANS[params["mine"]] if "mine" in params else False,
    )
    actor, credential = authenticate_stream(
        authorization=request.META.get("HTTP_AUTHORIZATION"), api_key=request.META.get("HTTP_X_API_KEY")
    )
    # An EventSource opened with `?after=` reconnects to the same URL with `Last-Event-ID` set to the
    # last event it received, which is the later position: the header wins.
    after = request.headers.get("Last-Event-ID") or params.get("after")
    return {"actor": actor, "credential": credential, "filters": filters, "after": after}


_CACHE_STATS = inline_serializer(
    "CacheStats",
    {
        "backend": serializers.CharField(),
        "hits": serializers.IntegerField(),
        "misses": serializers.IntegerField(),
        "errors": serializers.IntegerField(),
        "hit_ratio": serializers.FloatField(allow_null=True),
    },
)


class CacheStatsApi(BaseApi):
    @extend_schema(
        operation_id="cache_stats", parameters=_HEADERS, responses={200: _CACHE_STATS, **problems(*ALWAYS, 401, 403)}
    )
    def get(self, request: Request) -> Response:
        """Cache hits, misses and errors over all processes (managers)."""
        return Response(cache_stats(actor=actor_of(request)))
