"""OpenAPI descriptions of our authentication classes (drf-spectacular extensions)."""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api_rest.serializers import ProblemSerializer
from tasks.filters import BLANK_ALLOWED


class CredentialsSchemes(OpenApiAuthenticationExtension):
    """`CredentialsAuthentication` reads both headers: a bearer token or an API key, either one (never
    both at once, which is 401)."""

    target_class = "api_rest.auth.CredentialsAuthentication"
    name = ["jwtAuth", "apiKeyAuth"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return [{"jwtAuth": []}, {"apiKeyAuth": []}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "api_rest.auth.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


# -- responses, headers and the post-processing hook of the OpenAPI document -----------------------------

PROBLEM_MEDIA_TYPE = "application/problem+json"

_PROBLEM_WHEN: dict[int, str] = {
    400: "Invalid input (`invalid_input`, with `errors`) or a body that is not JSON (`malformed_request`).",
    401: "No credentials, or invalid, expired or revoked ones (`not_authenticated`).",
    403: "The role or API key does not allow it, or a session request lacks its CSRF token (`permission_denied`).",
    404: "No such task, or one you may not see (`not_found`).",
    406: "The `Accept` header names nothing the API can produce (`not_acceptable`).",
    409: "The first request with this `Idempotency-Key` is still running (`idempotency_key_in_flight`).",
    411: "A body without `Content-Length` (`length_required`).",
    412: "`If-Match` does not name the current version (`stale_version`, with `current_version`).",
    413: "The body is larger than 1 MiB (`request_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    422: "The `Idempotency-Key` came back with a different body (`idempotency_key_reused`).",
    429: "Over a rate limit (`rate_limited`, with `retry_after`).",
    503: "The database cannot be reached (`unavailable`).",
    504: "A statement ran past its time budget (`timeout`).",
}

# Every operation can answer these: content negotiation, the rate limit and the database come first.
ALWAYS = (406, 429, 503, 504)
# And every operation that reads a JSON body these.
WITH_BODY = (400, 411, 413, 415)


def problems(*statuses: int) -> dict[Any, Any]:
    """`extend_schema(responses=...)` entries: problem details for each status, with when it happens."""
    return {
        (status, PROBLEM_MEDIA_TYPE): OpenApiResponse(ProblemSerializer, description=_PROBLEM_WHEN[status])
        for status in sorted(set(statuses))
    }


def response_header(name: str, schema: dict[str, Any], description: str, **kwargs: Any) -> OpenApiParameter:
    return OpenApiParameter(name, schema, OpenApiParameter.HEADER, description=description, **kwargs)


def response_headers(*, challenge: bool, retry_after_on_429: bool = True) -> list[OpenApiParameter]:
    """The headers every answer of an operation may carry (docs/api/rest.md, "Headers"); `challenge`:
    its 401 carries `WWW-Authenticate` (the task and cache endpoints); `retry_after_on_429`: every 429
    carries `Retry-After` (not so on the events route, whose 429 may be `too_many_streams`)."""
    headers = [
        response_header(
            "X-Request-ID",
            {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$"},
            "The request's id: the client's own if valid, else a new one.",
            response=True,
            required=True,
        ),
        response_header(
            "RateLimit-Limit",
            {"type": "integer", "minimum": 1},
            "Requests allowed in the strictest window (when the request was counted).",
            response=True,
        ),
        response_header(
            "RateLimit-Remaining",
            {"type": "integer", "minimum": 0},
            "Requests left in that window.",
            response=True,
        ),
        response_header(
            "RateLimit-Reset",
            {"type": "integer", "minimum": 0},
            "Seconds until that window resets.",
            response=True,
        ),
        response_header(
            "Retry-After",
            {"type": "integer", "minimum": 0},
            "Seconds to wait.",
            response=[429],
            required=retry_after_on_429,
        ),
        response_header("Retry-After", {"type": "integer", "minimum": 0}, "Seconds to wait.", response=[503]),
        response_header(
            "Cache-Control",
            {"type": "string", "enum": ["private, no-cache"]},
            "What the answer says depends on who asks: no shared cache may store it, and a client revalidates "
            "what it keeps (`If-None-Match`).",
            response=True,
            required=True,
        ),
    ]
    if challenge:
        headers.append(
            response_header(
                "WWW-Authenticate",
                {"type": "string", "enum": ['Bearer realm="api"']},
                "The credentials to send.",
                response=[401],
                required=True,
            )
        )
    return headers


def etag_header(*statuses: int) -> OpenApiParameter:
    return response_header(
        "ETag",
        {"type": "string", "pattern": r'^"[1-9][0-9]*"$'},
        "The task's version, quoted: send it back as `If-Match` or `If-None-Match`.",
        response=list(statuses),
        required=True,
    )


# Stateful clients (and fuzzers) follow these from a created task to what can be done with it.
_TASK_LINKS = {
    "GetCreatedTask": "tasks_retrieve",
    "PatchCreatedTask": "tasks_partial_update",
    "ReplaceCreatedTask": "tasks_update",
    "DeleteCreatedTask": "tasks_destroy",
}


# `completed` and `status` sent together must agree (docs/domain.md, "The task"): the one rule between two
# fields of a task body, which only a `not` can state in OpenAPI 3.0.
_COMPLETED_AGREES_WITH_STATUS = {
    "not": {
        "anyOf": [
            {
                "required": ["status", "completed"],
                "properties": {"status": {"enum": ["completed"]}, "completed": {"enum": [False]}},
            },
            {
                "required": ["status", "completed"],
                "properties": {"status": {"enum": ["todo", "in_progress"]}, "completed": {"enum": [True]}},
            },
        ]
    }
}
_TASK_BODIES = ("TaskInputRequest", "PatchedTaskInputRequest")
# A list parameter sent empty (`?tag=`) counts as not sent, except `limit`, which must be a number.
_LISTS = ("tasks_list", "tasks_mine")


def _unwrap(schema: dict[str, Any]) -> None:
    """A field schema given as `allOf` of one inline schema (api_rest/serializers.py, where it keeps
    drf-spectacular from adding the field's own length and blank rules) becomes that schema."""
    parts = schema.get("allOf")
    if isinstance(parts, list) and len(parts) == 1 and "$ref" not in parts[0]:
        schema.pop("allOf")
        schema.update({**parts[0], **schema})


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]: every request and response object is closed
    (`additionalProperties: false`: bodies refuse unknown fields, responses have no others), a task
    body states that `completed` agrees with `status`, and a created task links to the operations on
    it, with its ETag as `If-Match`; the one list parameter that may be sent empty (`search`) says so,
    as any other empty one is 400."""
    schemas = result.get("components", {}).get("schemas", {})
    for component in schemas.values():
        if component.get("type") == "object" and "properties" in component:
            component.setdefault("additionalProperties", False)
            for field in component["properties"].values():
                _unwrap(field)
                _unwrap(field.get("items", {}))
    for name in _TASK_BODIES:
        if name in schemas:
            schemas[name].update(_COMPLETED_AGREES_WITH_STATUS)
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if operation.get("operationId") in _LISTS:
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "query" and parameter["name"] in BLANK_ALLOWED:
                        parameter["allowEmptyValue"] = True
        operation = path.get("post")
        if not operation or operation.get("operationId") != "tasks_create":
            continue
        links = operation["responses"]["201"].setdefault("links", {})
        for name, target in _TASK_LINKS.items():
            parameters = {"task_id": "$response.body#/id"}
            if target in {"tasks_partial_update", "tasks_update"}:
                parameters["header.If-Match"] = "$response.header.ETag"
            links[name] = {"operationId": target, "parameters": parameters}
    return result
