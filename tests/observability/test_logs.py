"""Logs of the real servers (docs/operations.md, "Logs"): what gunicorn (WSGI and ASGI workers) and
`manage.py grpcserver` print, read from their stdout and stderr.

- JSON lines (the production default): every line on stdout is one JSON object; one access line per
  request and call, with request_id, trace_id and span_id (null when tracing is off), user_id,
  protocol (rest / graphql / grpc / http), route (URL template, GraphQL operation, gRPC method),
  status and duration_ms; its trace and span ids are those of the exported SERVER span.
- the request id: a safe `X-Request-ID` / `x-request-id` is kept and returned (HTTP header, gRPC
  trailing metadata), an unsafe or missing one is replaced by a new one.
- readable lines (the default with DJANGO_DEBUG): not JSON, the same facts on one line, and each
  record printed once, on stdout.
- no credential ever reaches the output: valid and invalid bearer tokens, API keys, passwords (right
  and wrong), refresh tokens through refresh and revoke, in headers, bodies and query strings, over
  all three protocols, through 400 / 401 / 404 / 429 and a real 500, at LOG_LEVEL=DEBUG too.
- `observability.logging.redact`, the net under that rule, on each pattern it claims.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from hypothesis import given, settings
from hypothesis import strategies as st

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from core.auth import api_key_create
from observability.logging import JsonFormatter, RequestContextFilter, TextFormatter, redact, redact_by_pattern
from observability.middleware import accept_request_id
from tasks.models import Task
from tests.factories import TaskFactory, UserFactory
from tests.observability.tracing_live import (
    Collector,
    Server,
    access_lines,
    console_spans,
    graphql,
    grpc_call,
    grpcserver,
    gunicorn_asgi,
    gunicorn_wsgi,
    has_server_span,
    http,
    new_parent,
    otlp_env,
    start_all,
    stop_all,
    wait_for_access_line,
)

UNKNOWN_ID = "6f1c2a5e-0000-4000-8000-000000000404"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


# -- redact, the formatters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.DEF-123_x", "abc.DEF-123_x"),
        ("authorization: bearer s3cr3t-token-value", "s3cr3t-token-value"),
        ("got eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2lnbmF0dXJlLXBhcnQ from the client", "c2lnbmF0dXJlLXBhcnQ"),
        ("got eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2lnbmF0dXJlLXBhcnQ from the client", "eyJ1c2VyX2lkIjoiMSJ9"),
        ("X-API-Key: th_0123456789ab_AbC-dEf_123", "AbC-dEf_123"),
        ("key th_0123456789ab_AbC-dEf_123 refused", "th_0123456789ab_AbC-dEf_123"),
        ("username=demo&password=hunter2&next=/", "hunter2"),
        ('{"username": "demo", "password": "hunter2"}', "hunter2"),
        ("{'password': 'hunter2'}", "hunter2"),
        ("PASSWORD=Hunter2", "Hunter2"),
        ("passwd: hunter2", "hunter2"),
        ("secret=xyzzy", "xyzzy"),
        ("token=xyzzy", "xyzzy"),
        ('{"refresh_token": "xyzzy"}', "xyzzy"),
        ("GET /api/v1/tasks?access_token=xyzzy&limit=5", "xyzzy"),
        ("api_key=xyzzy", "xyzzy"),
        ("api-key: xyzzy", "xyzzy"),
        ("apikey=xyzzy", "xyzzy"),
        # A password may have spaces: all of it goes, not only its first word.
        ('{"username": "demo", "password": "correct horse battery staple"}', "horse battery staple"),
        ("{'password': 'correct horse battery staple'}", "horse battery staple"),
        ('password="correct horse battery staple"', "horse battery staple"),
        # Letters that a case-insensitive pattern takes for ASCII ones, and lowercasing does not
        # turn into them: U+017F (long s) is an s to the pattern, itself when lowercased.
        ("pa\u017fsword=hunter2", "hunter2"),
        ("\u017fecret=xyzzy", "xyzzy"),
        ("to\u212aen=xyzzy", "xyzzy"),  # U+212A, the Kelvin sign: a k to both
        # Non-ASCII elsewhere in the text, the credential itself plain.
        ("café: Authorization: Bearer abc.def", "abc.def"),
        ("naïve password=hunter2", "hunter2"),
    ],
)
def test_redact_scrubs_what_it_claims_to(text: str, secret: str) -> None:
    scrubbed = redact(text)

    assert secret not in scrubbed
    assert "[redacted]" in scrubbed


@pytest.mark.parametrize("candidate", ["abc", "A.b_c:d-1", "x" * 128])
def test_a_plain_request_id_is_kept(candidate: str) -> None:
    assert accept_request_id(candidate) == candidate


@pytest.mark.parametrize("candidate", ["abc\n", "abc\r\n", "\nabc", "a b", "x" * 129, "é"])
def test_a_request_id_that_could_break_a_log_line_or_a_header_is_replaced(candidate: str) -> None:
    """A final newline too: `$` alone would let it through, and gRPC then fails the call (INTERNAL,
    "Invalid metadata") when it echoes the id in the trailers."""
    made = accept_request_id(candidate)

    assert made != candidate
    assert uuid.UUID(hex=made).hex == made


def test_a_made_request_id_is_a_random_uuid4_in_hex() -> None:
    made = [accept_request_id(candidate) for candidate in (None, "", "bad id!") for _ in range(200)]

    assert len(set(made)) == len(made)
    for value in made:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


def test_redact_keeps_the_rest_of_the_line() -> None:
    assert redact("username=demo&password=hunter2&next=/") == "username=demo&password=[redacted]&next=/"
    assert redact('{"username": "demo", "password": "a b c", "n": 1}') == (
        '{"username": "demo", "password": "[redacted]", "n": 1}'
    )
    assert redact("Authorization: Bearer abc.def, retrying") == "Authorization: Bearer [redacted], retrying"


@pytest.mark.parametrize(
    "text",
    [
        "GET /api/v1/tasks/6f1c2a5e-0000-4000-8000-000000000404 404",
        "tokens issued: 3",
        "password_reset requested for demo",
        "cache get failed for task:6f1c2a5e; serving without the cache",
        "query TaskList 200 in 3.2 ms",
        "/tasks.v1.TaskService/GetTask NOT_FOUND",
    ],
)
def test_redact_leaves_what_is_no_credential_alone(text: str) -> None:
    assert redact(text) == text


_PIECES = st.sampled_from(
    [
        *("bearer", "Bearer ", "BEARER\t", "eyJ", "eyj", "EYJ", "th_", "TH_", "0123abcd", "_x-Y"),
        *("password", "PassWd", "secret", "Token", "api", "_", "-", "key", "KEY", "apikey", "Api-Key"),
        *("=", ": ", '"', "'", " ", ",", "&", "}", ".", "/api/v1/tasks/", "6f1c2a5e-0000", "\n"),
        *("\u017f", "\u212a", "é", "\u0131", "\u0130"),  # long s, Kelvin sign, e acute, dotless i, dotted I
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=3), max_size=12).map("".join))
def test_redact_answers_as_the_whole_pattern_does(text: str) -> None:
    """`redact` settles most texts without its pattern (a few substring checks): whatever the text,
    the answer is the pattern's."""
    assert redact(text) == redact_by_pattern(text)


def _record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.getLogger("taskhub.test").makeRecord(
        "taskhub.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    RequestContextFilter().filter(record)
    return record


class _Request:
    """Something logged as an `extra=` object whose text carries a credential, as Django's
    `django.request` records carry the request (`<WSGIRequest: GET '/path?query'>`)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __str__(self) -> str:
        return f"<WSGIRequest: GET {self.path!r}>"


def test_the_json_formatter_scrubs_the_extras_whatever_their_type() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2lnbmF0dXJlLXBhcnQ"
    record = _record(
        "Bad Request: %s",
        "/api/v1/tasks",
        request=_Request(f"/api/v1/tasks?access_token={token}"),
        params=("th_0123456789ab_AbC-dEf_123", 5),
        headers={"Authorization": f"Bearer {token}"},
        note="password=hunter2",
        status_code=400,
    )

    line = JsonFormatter().format(record)

    entry = json.loads(line)
    for secret in (token, "c2lnbmF0dXJlLXBhcnQ", "AbC-dEf_123", "hunter2"):
        assert secret not in line
    assert entry["status_code"] == 400 and entry["message"] == "Bad Request: /api/v1/tasks"
    assert entry["request"].startswith("<WSGIRequest: GET '/api/v1/tasks?access_token=")
    assert entry["params"][1] == 5


def test_a_text_line_is_one_line_whatever_the_path_holds() -> None:
    """A `%0A` in a URL's path reaches the access line's message and its `path` pair: escaped, so a
    client cannot write a line of its own (a forged access line) into a readable log."""
    forged = "2026-01-01 00:00:00,000 INFO taskhub.access [admin] POST /admin/auth/user/1/delete/ 200"
    path = f"/nothing-here\n{forged}\r\x1b[2J\u2028"
    record = _record("%s %s %s", "GET", path, 404, path=path, status=404)

    line = TextFormatter().format(record)

    assert line.splitlines() == [line]
    assert "\\n2026-01-01 00:00:00,000 INFO taskhub.access [admin]" in line
    assert "\x1b" not in line and "\u2028" not in line
    assert json.loads(line.split(" path=", 1)[1].split(" status=")[0]) == path


def test_a_text_lines_traceback_stays_on_lines_of_its_own() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("taskhub.test").makeRecord(
            "taskhub.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    RequestContextFilter().filter(record)

    lines = TextFormatter().format(record).splitlines()

    assert lines[0].endswith("failed") and lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


# -- live servers ------------------------------------------------------------------------------------------------

# Transactional: the servers must see what a test writes, so it is committed (and flushed after the
# test); a test transaction would also hold SQLite's write lock against the servers.
live = pytest.mark.django_db(transaction=True)

# Rate limits on, low enough that a test reaches a 429 quickly: the token endpoints (obtain, refresh,
# revoke) after 7 a minute, anonymous callers after 20.
RATE_LIMITS = {
    "RATE_LIMITS_ENABLED": "true",
    "RATE_LIMIT_TOKEN": "7/m,1000/h",
    "RATE_LIMIT_ANON": "20/m,1000/h",
}


@dataclass
class Config:
    """One logging configuration: its HTTP server(s) and gRPC server."""

    name: str
    http: Server
    grpc: Server
    asgi: Server | None = None
    json: bool = True
    tracing: bool = False

    @property
    def servers(self) -> list[Server]:
        return [server for server in (self.http, self.grpc, self.asgi) if server is not None]


@dataclass
class Configs:
    json_on: Config  # production defaults (JSON), tracing on (OTLP), LOG_LEVEL=DEBUG; WSGI, ASGI, gRPC
    json_off: Config  # production defaults (JSON, INFO), tracing off
    text: Config  # DJANGO_DEBUG=1: readable lines by default; LOG_LEVEL=DEBUG; console span exporter
    json_debug: Config  # DJANGO_DEBUG=1 with LOG_FORMAT=json and LOG_LEVEL=DEBUG

    def all(self) -> list[Config]:
        return [self.json_on, self.json_off, self.text, self.json_debug]


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    receiver = Collector()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def configs(django_db_setup: None, collector: Collector) -> Iterator[Configs]:
    def env(name: str, **variables: str) -> dict[str, str]:
        return {**RATE_LIMITS, "CACHE_KEY_PREFIX": f"taskhub-logs-{name}-{secrets.token_hex(3)}", **variables}

    on = env("on", **otlp_env(collector, "taskhub-logs"), LOG_LEVEL="DEBUG")  # type: ignore[arg-type]
    off = env("off")
    text = env(
        "text", DJANGO_DEBUG="1", LOG_LEVEL="DEBUG", OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="100"
    )
    debug_json = env("debug-json", DJANGO_DEBUG="1", LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    built = Configs(
        json_on=Config(
            "json_on",
            gunicorn_wsgi("json_on-wsgi", on, workers=1),
            grpcserver("json_on-grpc", on),
            asgi=gunicorn_asgi("json_on-asgi", on),
            tracing=True,
        ),
        json_off=Config("json_off", gunicorn_wsgi("json_off-wsgi", off, workers=1), grpcserver("json_off-grpc", off)),
        text=Config(
            "text", gunicorn_wsgi("text-wsgi", text, workers=1), grpcserver("text-grpc", text), json=False, tracing=True
        ),
        json_debug=Config(
            "json_debug",
            gunicorn_wsgi("json_debug-wsgi", debug_json, workers=1),
            grpcserver("json_debug-grpc", debug_json),
        ),
    )
    every = [server for config in built.all() for server in config.servers]
    try:
        start_all(every)
        yield built
    finally:
        stop_all(every)


@functools.cache
def password_hash(password: str) -> str:
    """The production servers check passwords with PBKDF2 (the tests' fast MD5 is not among their
    hashers): hashed once per password, it costs a few hundred milliseconds."""
    return make_password(password, hasher=PBKDF2PasswordHasher())


PASSWORD = f"correct-horse-{secrets.token_hex(6)}"


@dataclass
class Data:
    user_id: int
    username: str
    password: str
    api_key: str
    tasks: list[str] = field(default_factory=list)

    @property
    def key_auth(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def broken_task(self) -> str:
        task = TaskFactory(owner_id=self.user_id, title="broken")
        Task.objects.filter(pk=task.pk).update(priority=7)  # not a Priority: rendering it raises KeyError
        return str(task.pk)


@pytest.fixture
def data() -> Data:
    user = UserFactory()
    user.password = password_hash(PASSWORD)
    user.save(update_fields=["password"])
    _, raw_key = api_key_create(user=user, name="log tests")
    tasks = [str(TaskFactory(owner=user, title=f"logged {n}").pk) for n in range(3)]
    return Data(user_id=user.pk, username=user.username, password=PASSWORD, api_key=raw_key, tasks=tasks)


def json_stdout(server: Server) -> list[dict[str, Any]]:
    """Every stdout line of a JSON-logging server as an object (the gRPC server's start-up lines too)."""
    entries = []
    for line in list(server.stdout):
        entry = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


def request_id() -> str:
    return f"req-{uuid.uuid4().hex[:20]}"


# -- access lines -------------------------------------------------------------------------------------------------


@dataclass
class Expected:
    protocol: str
    route: str
    status: int | str
    user: bool
    method: str


def _exercise(config: Config, data: Data) -> list[tuple[Server, str, Expected]]:
    """One of each kind of request and call, each with its own request id: (server, id, expectation)."""
    sent: list[tuple[Server, str, Expected]] = []
    task = data.tasks[0]
    for server in (config.http, config.asgi):
        if server is None:
            continue
        calls = [
            ("GET", f"/api/v1/tasks/{task}", None, Expected("rest", "/api/v1/tasks/{task_id}", 200, True, "GET")),
            ("GET", f"/api/v1/tasks/{UNKNOWN_ID}", None, Expected("rest", "/api/v1/tasks/{task_id}", 404, True, "GET")),
            ("POST", "/api/v1/tasks", {"title": "logged"}, Expected("rest", "/api/v1/tasks", 201, True, "POST")),
            ("GET", "/healthz", None, Expected("http", "/healthz", 200, False, "GET")),
            ("GET", "/no/such/page", None, Expected("http", "unmatched", 404, False, "GET")),
        ]
        for method, path, body, expected in calls:
            rid = request_id()
            headers = {"X-Request-ID": rid, **(data.key_auth if expected.user else {})}
            response = http(server, method, path, headers=headers, json_body=body)
            assert response.status == expected.status, (server.name, path, response.body)
            sent.append((server, rid, expected))
        for document, route in (
            ("query LoggedTask($id: ID!) { task(id: $id) { title } }", "query LoggedTask"),
            ("{ me { id } }", "query anonymous"),
        ):
            rid = request_id()
            response = graphql(
                server,
                document,
                {"id": task} if "$id" in document else None,
                headers={"X-Request-ID": rid, **data.key_auth},
            )
            assert response.status == 200 and "errors" not in response.json(), response.body
            sent.append((server, rid, Expected("graphql", route, 200, True, "POST")))
    for request, method, status in (
        (pb.GetTaskRequest(id=task), "GetTask", "OK"),
        (pb.GetTaskRequest(id=UNKNOWN_ID), "GetTask", "NOT_FOUND"),
        (pb.ListTasksRequest(page_size=2), "ListTasks", "OK"),
    ):
        rid = request_id()
        code, _, _ = grpc_call(config.grpc, method, request, (("x-api-key", data.api_key), ("x-request-id", rid)))
        assert code.name == status
        sent.append((config.grpc, rid, Expected("grpc", f"/tasks.v1.TaskService/{method}", status, True, "POST")))
    return sent


@live
@pytest.mark.parametrize("name", ["json_on", "json_off"])
def test_one_json_access_line_per_request_and_call(configs: Configs, data: Data, name: str) -> None:
    config = getattr(configs, name)

    sent = _exercise(config, data)

    for server, rid, expected in sent:
        line = wait_for_access_line(server, rid)
        assert line["level"] == "INFO" and line["logger"] == "taskhub.access"
        assert line["protocol"] == expected.protocol, line
        assert line["route"] == expected.route, line
        assert line["status"] == expected.status, line
        assert line["method"] == expected.method, line
        assert line["user_id"] == (data.user_id if expected.user else None), line
        assert isinstance(line["duration_ms"], (int, float)) and 0 <= line["duration_ms"] < 30_000, line
        if config.tracing:
            assert HEX32.fullmatch(line["trace_id"]) and HEX16.fullmatch(line["span_id"]), line
        else:
            assert line["trace_id"] is None and line["span_id"] is None, line
    for server in config.servers:
        entries = json_stdout(server)
        assert entries, server.name
        assert all({"time", "level", "logger", "message", "request_id"} <= entry.keys() for entry in entries)
        # One line per request: no other line (Django's, uvicorn's, gunicorn's) repeats an access.
        ids = [entry["request_id"] for entry in access_lines(server.stdout)]
        assert len(ids) == len(set(ids)), server.name


@live
def test_the_access_lines_trace_ids_are_those_of_the_exported_server_spans(
    configs: Configs, collector: Collector, data: Data
) -> None:
    config = configs.json_on
    traceparent, trace_id, parent_id = new_parent()
    with_parent, without_parent, grpc_with, grpc_without = request_id(), request_id(), request_id(), request_id()
    path = f"/api/v1/tasks/{data.tasks[0]}"

    for server in (config.http, config.asgi):
        assert server is not None
        assert (
            http(
                server, "GET", path, headers={**data.key_auth, "X-Request-ID": with_parent, "traceparent": traceparent}
            ).status
            == 200
        )
        assert http(server, "GET", path, headers={**data.key_auth, "X-Request-ID": without_parent}).status == 200
    auth = ("x-api-key", data.api_key)
    for metadata in (
        (auth, ("x-request-id", grpc_with), ("traceparent", traceparent)),
        (auth, ("x-request-id", grpc_without)),
    ):
        assert grpc_call(config.grpc, "GetTask", pb.GetTaskRequest(id=data.tasks[0]), metadata)[0] == grpc.StatusCode.OK

    for server, rid, parent in [
        (config.http, with_parent, parent_id),
        (config.http, without_parent, ""),
        (config.asgi, with_parent, parent_id),
        (config.asgi, without_parent, ""),
        (config.grpc, grpc_with, parent_id),
        (config.grpc, grpc_without, ""),
    ]:
        assert server is not None
        line = wait_for_access_line(server, rid)
        if parent:
            assert line["trace_id"] == trace_id
        span_id = line["span_id"]
        spans = collector.wait_for_trace(line["trace_id"], lambda spans, span_id=span_id: _has_span(spans, span_id))
        [span] = [span for span in spans if span.span_id == span_id]
        assert span.kind == "SERVER" and span.parent_span_id == parent, (server.name, span)
        assert has_server_span(spans)


def _has_span(spans: list[Any], span_id: str) -> bool:
    return any(span.span_id == span_id for span in spans)


@live
def test_an_unsampled_request_logs_the_callers_trace_and_exports_nothing(
    configs: Configs, collector: Collector, data: Data
) -> None:
    """A caller that decided not to sample (`traceparent` flags 00): nothing of its requests is exported,
    not even the SQL and Redis spans of a write (the instrumentations are suppressed under a span that
    does not record), yet each access line carries the caller's trace id, so the logs of one request
    line up across services."""
    config = configs.json_on
    unsampled_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    unsampled = f"00-{unsampled_trace}-{caller_span}-00"
    sampled, sampled_trace, _ = new_parent()
    sent = []
    for server in (config.http, config.asgi):
        assert server is not None
        rid = request_id()
        headers = {**data.key_auth, "X-Request-ID": rid, "traceparent": unsampled}
        assert http(server, "POST", "/api/v1/tasks", headers=headers, json_body={"title": "unsampled"}).status == 201
        assert http(server, "GET", "/api/v1/tasks/me", headers={**data.key_auth, "traceparent": sampled}).status == 200
        sent.append((server, rid))
    rid = request_id()
    metadata = (("x-api-key", data.api_key), ("x-request-id", rid), ("traceparent", unsampled))
    code, _, _ = grpc_call(config.grpc, "CreateTask", pb.CreateTaskRequest(title="unsampled"), metadata)
    assert code == grpc.StatusCode.OK
    sent.append((config.grpc, rid))
    assert Task.objects.filter(owner_id=data.user_id, title="unsampled").count() == 3  # the writes happened

    for server, rid in sent:
        line = wait_for_access_line(server, rid)
        assert line["trace_id"] == unsampled_trace, (server.name, line)
        # the server's own (unrecorded) span, child of the caller's
        assert HEX16.fullmatch(line["span_id"]) and line["span_id"] != caller_span, (server.name, line)
    # The sampled requests' spans arrive: the pipeline flows, so the unsampled ones would have too.
    servers = collector.wait_for_trace(sampled_trace, lambda spans: sum(span.kind == "SERVER" for span in spans) >= 2)
    assert sum(span.kind == "SERVER" for span in servers) == 2
    time.sleep(0.5)  # several export periods more
    assert collector.trace(unsampled_trace) == []


# -- request ids ----------------------------------------------------------------------------------------------------


UNSAFE_IDS = ["has a space", "x" * 129, "<script>alert(1)</script>", 'quote"d', "semi;colon"]


@live
def test_http_request_ids_are_kept_when_safe_and_made_otherwise(configs: Configs, data: Data) -> None:
    for server in (configs.json_on.http, configs.json_on.asgi):
        assert server is not None
        kept = request_id() + ".A-Z_0:9"
        ok = http(server, "GET", f"/api/v1/tasks/{data.tasks[0]}", headers={**data.key_auth, "X-Request-ID": kept})
        missing = http(
            server, "GET", f"/api/v1/tasks/{UNKNOWN_ID}", headers={**data.key_auth, "X-Request-ID": kept + "-404"}
        )
        made = http(server, "GET", f"/api/v1/tasks/{data.tasks[0]}", headers=data.key_auth)

        assert ok.headers["x-request-id"] == kept
        assert missing.headers["x-request-id"] == kept + "-404"
        assert missing.json()["request_id"] == kept + "-404"  # the problem details name it too
        assert HEX32.fullmatch(made.headers["x-request-id"])
        assert wait_for_access_line(server, kept)["status"] == 200
        assert wait_for_access_line(server, kept + "-404")["status"] == 404
        assert wait_for_access_line(server, made.headers["x-request-id"])["status"] == 200

        for unsafe in UNSAFE_IDS:
            response = http(
                server, "GET", f"/api/v1/tasks/{UNKNOWN_ID}", headers={**data.key_auth, "X-Request-ID": unsafe}
            )
            replaced = response.headers["x-request-id"]
            assert HEX32.fullmatch(replaced), (unsafe, replaced)
            assert response.json()["request_id"] == replaced
            assert wait_for_access_line(server, replaced)["status"] == 404
            assert not any(unsafe in line for line in server.stdout), unsafe


@live
def test_grpc_request_ids_come_back_in_the_trailing_metadata(configs: Configs, data: Data) -> None:
    server = configs.json_on.grpc
    auth = ("x-api-key", data.api_key)
    kept = request_id()

    ok_code, _, ok_trailers = grpc_call(
        server, "GetTask", pb.GetTaskRequest(id=data.tasks[0]), (auth, ("x-request-id", kept))
    )
    failed_code, _, failed_trailers = grpc_call(
        server, "GetTask", pb.GetTaskRequest(id=UNKNOWN_ID), (auth, ("x-request-id", kept + "-nf"))
    )
    made_code, _, made_trailers = grpc_call(server, "GetTask", pb.GetTaskRequest(id=data.tasks[0]), (auth,))
    unsafe_code, _, unsafe_trailers = grpc_call(
        server, "GetTask", pb.GetTaskRequest(id=data.tasks[0]), (auth, ("x-request-id", "has a space"))
    )

    assert (ok_code, failed_code, made_code, unsafe_code) == (
        grpc.StatusCode.OK,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.OK,
        grpc.StatusCode.OK,
    )
    assert ok_trailers["x-request-id"] == kept
    assert failed_trailers["x-request-id"] == kept + "-nf"
    assert HEX32.fullmatch(made_trailers["x-request-id"])
    assert HEX32.fullmatch(unsafe_trailers["x-request-id"])
    assert wait_for_access_line(server, kept)["status"] == "OK"
    assert wait_for_access_line(server, kept + "-nf")["status"] == "NOT_FOUND"
    assert wait_for_access_line(server, made_trailers["x-request-id"])["route"] == "/tasks.v1.TaskService/GetTask"
    assert wait_for_access_line(server, unsafe_trailers["x-request-id"])["status"] == "OK"


# -- readable lines -------------------------------------------------------------------------------------------------


# A record printed by a logging handler: ours (readable lines) or Django's own (bare messages).
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
DJANGO_MESSAGES = ("Bad Request:", "Unauthorized:", "Not Found:", "Internal Server Error:", "Traceback")


def _text_line(server: Server, rid: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in list(server.stdout) if " taskhub.access " in line and f"[{rid}]" in line]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, (rid, server.output()[-3000:])
            return found[0]
        time.sleep(0.05)


def _field(line: str, name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", line)
    assert match, (name, line)
    return match.group(1)


@live
def test_development_logs_are_readable_lines_with_the_same_facts(configs: Configs, data: Data) -> None:
    config = configs.text
    rest_id, error_id, grpc_id = request_id(), request_id(), request_id()

    assert (
        http(
            config.http, "GET", f"/api/v1/tasks/{data.tasks[0]}", headers={**data.key_auth, "X-Request-ID": rest_id}
        ).status
        == 200
    )
    assert (
        http(config.http, "GET", "/api/v1/tasks?bogus=1", headers={**data.key_auth, "X-Request-ID": error_id}).status
        == 400
    )
    code, _, _ = grpc_call(
        config.grpc,
        "GetTask",
        pb.GetTaskRequest(id=data.tasks[0]),
        (("x-api-key", data.api_key), ("x-request-id", grpc_id)),
    )
    assert code == grpc.StatusCode.OK

    rest = _text_line(config.http, rest_id)
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO taskhub\.access \[" + rest_id + r"\] GET /api/v1/tasks/\S+ 200\b",
        rest,
    ), rest
    with pytest.raises(ValueError):
        json.loads(rest)
    assert _field(rest, "protocol") == "rest"
    assert _field(rest, "route") == "/api/v1/tasks/{task_id}"
    assert _field(rest, "status") == "200"
    assert _field(rest, "user_id") == str(data.user_id)
    assert float(_field(rest, "duration_ms")) >= 0
    # Tracing is on (console exporter): the line names the trace the exporter printed.
    trace_id, span_id = _field(rest, "trace_id"), _field(rest, "span_id")
    deadline = time.monotonic() + 10
    while not any(span["context"]["span_id"] == f"0x{span_id}" for span in console_spans(list(config.http.stdout))):
        assert time.monotonic() < deadline, "the access line's span was not printed"
        time.sleep(0.05)
    [span] = [span for span in console_spans(list(config.http.stdout)) if span["context"]["span_id"] == f"0x{span_id}"]
    assert span["context"]["trace_id"] == f"0x{trace_id}" and span["kind"] == "SpanKind.SERVER"

    assert _field(_text_line(config.http, error_id), "status") == "400"
    call = _text_line(config.grpc, grpc_id)
    assert "/tasks.v1.TaskService/GetTask OK" in call
    assert (_field(call, "protocol"), _field(call, "status"), _field(call, "user_id")) == (
        "grpc",
        "OK",
        str(data.user_id),
    )
    assert HEX32.fullmatch(_field(call, "trace_id"))

    # Each record once, on stdout: nothing of Django's own logging on stderr (it would be unformatted).
    time.sleep(0.2)
    for server in config.servers:
        records = [line for line in server.stderr if LOG_RECORD.match(line) or line.startswith(DJANGO_MESSAGES)]
        assert not records, server.stderr


# -- no credential in any output ----------------------------------------------------------------------------------


def _signature(token: str) -> str:
    return token.rsplit(".", 1)[1]


class Secrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, what: str, value: str) -> str:
        assert len(value) >= 8, what  # a short value could appear by chance
        self.values[what] = value
        return value

    def token(self, what: str, value: str) -> str:
        self.add(what, value)
        self.add(f"{what} (signature)", _signature(value))
        return value


def _until(send: Any, status: Any, attempts: int) -> int:
    """Repeat a request until it answers `status` (a rate limit reached); how many it took."""
    for attempt in range(1, attempts + 1):
        if send() == status:
            return attempt
    pytest.fail(f"no {status} after {attempts} attempts")


def _scenario(config: Config, data: Data, found: Secrets) -> dict[str, int]:
    """Every way a credential travels, right and wrong, over all three protocols. Returns how many
    answers of each kind it saw, so the caller knows the error paths ran."""
    server, asgi, grpc_server = config.http, config.asgi, config.grpc
    seen: dict[str, int] = {}

    def expect(response: Any, status: int) -> Any:
        assert response.status == status, (config.name, response.status, response.body[:500])
        seen[str(status)] = seen.get(str(status), 0) + 1
        return response

    password = found.add("password", data.password)
    wrong = found.add("wrong password", f"wrong-horse-{secrets.token_hex(6)}")
    other_wrong = found.add("password in a malformed body", f"wrong-battery-{secrets.token_hex(6)}")
    api_key = found.add("API key", data.api_key)
    _, prefix, secret = data.api_key.split("_", 2)  # th_<prefix>_<secret>; the secret may hold "_"
    found.add("API key secret", secret)
    forged_secret = found.add("forged API key secret", secrets.token_urlsafe(32))
    forged_key = found.add("forged API key", f"th_{prefix}_{forged_secret}")
    unknown_key = found.add("unknown API key", f"th_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}")
    garbage = found.add("garbage token", f"not-a-jwt-{secrets.token_hex(8)}")

    # Token endpoint: right and wrong password, and a body that is not JSON.
    pair = expect(
        http(server, "POST", "/api/v1/auth/token", json_body={"username": data.username, "password": password}), 200
    ).json()
    access = found.token("access token", pair["access"])
    refresh = found.token("refresh token", pair["refresh"])
    expect(http(server, "POST", "/api/v1/auth/token", json_body={"username": data.username, "password": wrong}), 401)
    body = f'{{"username": "{data.username}", "password": "{other_wrong}"'.encode()
    expect(http(server, "POST", "/api/v1/auth/token", raw_body=body, headers={"Content-Type": "application/json"}), 400)
    forged = found.token("forged access token", access.rsplit(".", 1)[0] + "." + secrets.token_urlsafe(32))

    bearer = {"Authorization": f"Bearer {access}"}
    broken = data.broken_task()
    for target in (server, asgi):
        if target is None:
            continue
        expect(http(target, "GET", f"/api/v1/tasks/{data.tasks[1]}", headers=bearer), 200)
        expect(http(target, "GET", f"/api/v1/tasks/{data.tasks[0]}", headers={"X-API-Key": api_key}), 200)
        expect(http(target, "GET", "/api/v1/tasks", headers={"Authorization": f"Bearer {forged}"}), 401)
        expect(http(target, "GET", "/api/v1/tasks", headers={"Authorization": f"Bearer {garbage}"}), 401)
        expect(http(target, "GET", "/api/v1/tasks", headers={"X-API-Key": forged_key}), 401)
        expect(http(target, "GET", "/api/v1/tasks", headers={"X-API-Key": unknown_key}), 401)
        # Credentials in a query string (a client's mistake): a 400 for the unknown parameters.
        expect(http(target, "GET", f"/api/v1/tasks?access_token={access}&api_key={api_key}", headers=bearer), 400)
        expect(http(target, "GET", f"/api/v1/tasks/{UNKNOWN_ID}", headers=bearer), 404)
        expect(http(target, "POST", "/api/v1/tasks", headers=bearer, json_body={"title": ""}), 400)
        expect(http(target, "GET", f"/api/v1/tasks/{broken}", headers=bearer), 500)

        # GraphQL: the same credentials, a token where an id belongs, a real INTERNAL_SERVER_ERROR.
        assert "errors" not in expect(graphql(target, "{ me { id } }", headers=bearer), 200).json()
        assert "errors" not in expect(graphql(target, "{ me { id } }", headers={"X-API-Key": api_key}), 200).json()
        graphql(target, "{ me { id } }", headers={"Authorization": f"Bearer {forged}"})
        graphql(target, "{ me { id } }", headers={"X-API-Key": forged_key})
        misplaced = expect(
            graphql(target, "query($id: ID!) { task(id: $id) { id } }", {"id": access}, headers=bearer), 200
        )
        assert "errors" in misplaced.json()
        failed = expect(
            graphql(target, "query($id: ID!) { task(id: $id) { priority } }", {"id": broken}, headers=bearer), 200
        )
        assert failed.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"

    # Refresh (rotation: the old refresh token is blacklisted) and revoke.
    rotated = expect(http(server, "POST", "/api/v1/auth/token/refresh", json_body={"refresh": refresh}), 200).json()
    found.token("rotated access token", rotated["access"])
    new_refresh = found.token("rotated refresh token", rotated["refresh"])
    expect(http(server, "POST", "/api/v1/auth/token/refresh", json_body={"refresh": refresh}), 401)
    expect(http(server, "POST", "/api/v1/auth/token/revoke", json_body={"refresh": new_refresh}), 204)
    revoke_garbage = http(server, "POST", "/api/v1/auth/token/revoke", json_body={"refresh": garbage})
    assert revoke_garbage.status in (400, 401, 429), revoke_garbage.body

    # gRPC: the same credentials as metadata, and each failure.
    calls = [
        (pb.GetTaskRequest(id=data.tasks[0]), (("authorization", f"Bearer {access}"),), grpc.StatusCode.OK),
        (pb.GetTaskRequest(id=data.tasks[0]), (("x-api-key", api_key),), grpc.StatusCode.OK),
        (pb.GetTaskRequest(id=UNKNOWN_ID), (("authorization", f"Bearer {access}"),), grpc.StatusCode.NOT_FOUND),
        # A token where the id belongs: not an id, so no such task.
        (pb.GetTaskRequest(id=access), (("authorization", f"Bearer {access}"),), grpc.StatusCode.NOT_FOUND),
        (pb.GetTaskRequest(id=broken), (("authorization", f"Bearer {access}"),), grpc.StatusCode.INTERNAL),
        (
            pb.GetTaskRequest(id=data.tasks[0]),
            (("authorization", f"Bearer {forged}"),),
            grpc.StatusCode.UNAUTHENTICATED,
        ),
        (pb.GetTaskRequest(id=data.tasks[0]), (("x-api-key", forged_key),), grpc.StatusCode.UNAUTHENTICATED),
    ]
    for request, metadata, status in calls:
        code, _, _ = grpc_call(grpc_server, "GetTask", request, metadata)
        assert code == status, (config.name, metadata[0][0], code, status)
        seen[status.name] = seen.get(status.name, 0) + 1
    create, _, _ = grpc_call(grpc_server, "CreateTask", pb.CreateTaskRequest(title=""), (("x-api-key", api_key),))
    assert create == grpc.StatusCode.INVALID_ARGUMENT

    # 429: guessing passwords, and anonymous callers with bad credentials, until they are limited.
    def guess() -> int:
        return http(
            server, "POST", "/api/v1/auth/token", json_body={"username": data.username, "password": wrong}
        ).status

    def anonymous_graphql() -> int:
        return graphql(server, "{ me { id } }", headers={"Authorization": f"Bearer {forged}"}).status

    def anonymous_call() -> grpc.StatusCode:
        return grpc_call(grpc_server, "GetTask", pb.GetTaskRequest(id=data.tasks[0]), (("x-api-key", forged_key),))[0]

    seen["429"] = _until(guess, 429, attempts=20) + _until(anonymous_graphql, 429, attempts=60)
    seen["RESOURCE_EXHAUSTED"] = _until(anonymous_call, grpc.StatusCode.RESOURCE_EXHAUSTED, attempts=60)
    return seen


@live
@pytest.mark.parametrize("name", ["json_on", "json_off", "text", "json_debug"])
def test_no_credential_reaches_any_output(configs: Configs, collector: Collector, data: Data, name: str) -> None:
    config: Config = getattr(configs, name)
    found = Secrets()

    seen = _scenario(config, data, found)
    time.sleep(0.5)  # the last lines and spans

    assert {
        "200",
        "400",
        "401",
        "404",
        "500",
        "429",
        "INTERNAL",
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
    } <= seen.keys()
    output = "\n".join(server.output() for server in config.servers)
    # The error paths were logged: the access lines of the refusals, and the 500's traceback.
    assert "KeyError" in output and "Traceback" in output
    assert output.count(" 401") + output.count('"status": 401') >= 4
    if config.tracing and config.json:
        exported = "\n".join(json.dumps(dict(span.attributes)) for span in collector.spans())
        output += "\n" + exported
    leaks = {what: value for what, value in found.values.items() if value in output}
    assert not leaks, {what: _context(output, value) for what, value in leaks.items()}


def _context(output: str, value: str) -> str:
    at = output.index(value)
    return output[max(0, at - 300) : at + len(value) + 100]
