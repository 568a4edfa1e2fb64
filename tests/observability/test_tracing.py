"""OpenTelemetry tracing (docs/operations.md, "Tracing") of the real servers, seen from a real OTLP collector.

Every server runs in its own process, configured only by OTEL_* variables (tracing_live.py says why):
gunicorn with two forked gthread workers (WSGI), gunicorn + uvicorn_worker.UvicornWorker (ASGI) and
`manage.py grpcserver`, all exporting OTLP/HTTP to the collector this module runs; and, for the
switches, a server with no OTEL_* variable at all, one with OTEL_SDK_DISABLED=true beside an exporter,
one with the console exporter and one whose OTLP endpoint is dead. What is proved:

- a W3C `traceparent` (HTTP header, gRPC metadata) makes the SERVER span a child of the caller's span;
  without one (or with a malformed one) a new trace starts; an unsampled parent records nothing;
- span names and attributes: `GET /api/v1/tasks/{task_id}`, `tasks.v1.TaskService/GetTask`,
  http.route, http.response.status_code, rpc.grpc.status_code, ERROR status only for server faults;
- the children, all in the caller's trace and below the SERVER span: SQL statements (sqlite3 or
  psycopg), Redis commands (with REDIS_URL), `cache.get` / `cache.set`, `tasks.task_*` service spans;
- both forked gunicorn workers export (process.pid of each worker), and so does the ASGI worker;
- nothing is recorded by default or with OTEL_SDK_DISABLED=true (and /health says so); the console
  exporter prints spans on stdout; a dead collector neither breaks nor slows requests.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from django.conf import settings
from django.db import connection

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from core.auth import api_key_create
from tasks.models import Task
from tests.factories import TaskFactory, UserFactory
from tests.observability.tracing_live import (
    Collector,
    Server,
    Span,
    console_spans,
    free_port,
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

# Transactional: the servers must see what a test writes, so it is committed (and flushed after the
# test); a test transaction would also hold SQLite's write lock against the servers.
pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN_ID = "6f1c2a5e-0000-4000-8000-000000000404"


# -- fixtures ---------------------------------------------------------------------------------------------------


@dataclass
class Data:
    user_id: int
    api_key: str
    tasks: list[str]  # ids of tasks nobody has read yet: each test takes its own (a cache miss, so SQL)

    def fresh_task(self) -> str:
        return self.tasks.pop()

    def broken_task(self) -> str:
        """A task whose priority cannot be rendered: reading it is a real 500 / INTERNAL (and so is
        listing its owner's tasks, so only the tests of faults make one)."""
        task = TaskFactory(owner_id=self.user_id, title="broken")
        Task.objects.filter(pk=task.pk).update(priority=7)  # not a Priority: rendering raises KeyError
        return str(task.pk)

    @property
    def http_auth(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    @property
    def grpc_auth(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.api_key),)


@pytest.fixture
def data() -> Data:
    """A user, an API key and tasks of its own, committed to the test database the servers use (the
    transactional test flushes them afterwards)."""
    user = UserFactory()
    _, raw_key = api_key_create(user=user, name="tracing tests")
    tasks = [str(TaskFactory(owner=user, title=f"traced {n}").pk) for n in range(6)]
    return Data(user_id=user.pk, api_key=raw_key, tasks=tasks)


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    receiver = Collector()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def default_collector() -> Iterator[Collector | None]:
    """A collector on OTLP's default endpoint (localhost:4318), if that port is free: where a server
    with no OTEL_* variable would export if tracing were on by default (the SDK's own default is otlp)."""
    try:
        receiver = Collector(port=4318)
    except OSError:
        yield None
        return
    try:
        yield receiver
    finally:
        receiver.close()


@dataclass
class Servers:
    wsgi: Server  # gunicorn, 2 forked gthread workers, OTLP
    asgi: Server  # gunicorn + UvicornWorker, OTLP
    grpc: Server  # manage.py grpcserver, OTLP
    default: Server  # no OTEL_* variable at all
    disabled: Server  # OTEL_SDK_DISABLED=true beside OTLP and console exporters
    console: Server  # the console exporter
    dead: Server  # OTLP to a port nobody listens on


@pytest.fixture(scope="module")
def servers(django_db_setup: None, collector: Collector) -> Iterator[Servers]:
    dead_endpoint = f"http://127.0.0.1:{free_port()}"  # closed again: connection refused
    started = Servers(
        wsgi=gunicorn_wsgi("wsgi", otlp_env(collector, "taskhub-wsgi"), workers=2),
        asgi=gunicorn_asgi("asgi", otlp_env(collector, "taskhub-asgi")),
        grpc=grpcserver("grpc", otlp_env(collector, "taskhub-grpc")),
        default=gunicorn_wsgi("default", {}, workers=1),
        disabled=gunicorn_wsgi(
            "disabled",
            otlp_env(collector, "taskhub-disabled", OTEL_SDK_DISABLED="true", OTEL_TRACES_EXPORTER="otlp,console"),
            workers=1,
        ),
        console=gunicorn_wsgi(
            "console", {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}, workers=1
        ),
        dead=gunicorn_wsgi(
            "dead", {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": dead_endpoint}, workers=1
        ),
    )
    started.dead.stop_grace = 1.0  # its exporter would retry the last batch for 10 s on the way out
    every = list(vars(started).values())
    try:
        start_all(every)
        yield started
    finally:
        stop_all(every)


# -- helpers ----------------------------------------------------------------------------------------------------


def traced_trace(collector: Collector, trace_id: str) -> tuple[Span, list[Span]]:
    """The SERVER span of `trace_id` and every span of the trace, once the SERVER span (which ends
    last, after all its children) has arrived."""
    spans = collector.wait_for_trace(trace_id, has_server_span)
    servers = [span for span in spans if span.kind == "SERVER"]
    assert len(servers) == 1, spans
    return servers[0], spans


def below(spans: list[Span], root: Span) -> list[Span]:
    """Every span of `spans` that descends from `root`."""
    children: dict[str, list[Span]] = {}
    for span in spans:
        children.setdefault(span.parent_span_id, []).append(span)
    found, todo = [], [root.span_id]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.span_id)
    return found


def assert_continues(server: Span, trace_id: str, parent_id: str) -> None:
    assert server.kind == "SERVER"
    assert (server.trace_id, server.parent_span_id) == (trace_id, parent_id)


def assert_one_tree(spans: list[Span], server: Span) -> None:
    """Every other span of the trace hangs below the SERVER span: nothing detached, nothing lost."""
    assert {span.span_id for span in below(spans, server)} == {span.span_id for span in spans} - {server.span_id}


def sql_spans(spans: list[Span]) -> list[Span]:
    vendor = "postgresql" if connection.vendor == "postgresql" else "sqlite"
    scope = "opentelemetry.instrumentation." + ("psycopg" if vendor == "postgresql" else "sqlite3")
    found = [span for span in spans if span.attributes.get("db.system") == vendor]
    assert all(span.scope == scope and span.kind == "CLIENT" for span in found), found
    return found


def _worker_pids(server: Server) -> set[int]:
    """The pids of a gunicorn server's workers, as its master logged them."""
    return {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", "\n".join(server.stderr))}


def named(spans: list[Span], name: str) -> list[Span]:
    return [span for span in spans if span.name == name]


# -- HTTP -------------------------------------------------------------------------------------------------------


def test_a_rest_get_continues_the_callers_trace(servers: Servers, collector: Collector, data: Data) -> None:
    traceparent, trace_id, parent_id = new_parent()
    task_id = data.fresh_task()

    response = http(
        servers.wsgi, "GET", f"/api/v1/tasks/{task_id}", headers={**data.http_auth, "traceparent": traceparent}
    )

    assert response.status == 200, response.body
    server, spans = traced_trace(collector, trace_id)
    assert_continues(server, trace_id, parent_id)
    assert server.name == "GET /api/v1/tasks/{task_id}"
    assert server.attributes["http.request.method"] == "GET"
    assert server.attributes["http.route"] == "/api/v1/tasks/{task_id}"
    assert server.attributes["http.response.status_code"] == 200
    assert server.status_code == 0  # unset: no fault
    assert server.service == "taskhub-wsgi"
    assert_one_tree(spans, server)

    [selector] = named(spans, "tasks.task_get")
    assert selector.parent_span_id == server.span_id and selector.kind == "INTERNAL"
    assert named(below(spans, selector), "cache.get"), "the task is looked up in the cache first"
    # A task nobody read yet: a cache miss, so its row is read from the database inside the selector.
    reads = [span for span in sql_spans(below(spans, selector)) if "tasks_task" in span.attributes["db.statement"]]
    assert reads and all(span.attributes["db.statement"].lstrip().startswith("SELECT") for span in reads)


def test_a_rest_post_traces_the_service_its_statements_and_the_cache_write(
    servers: Servers, collector: Collector, data: Data
) -> None:
    traceparent, trace_id, parent_id = new_parent()

    response = http(
        servers.wsgi,
        "POST",
        "/api/v1/tasks",
        headers={**data.http_auth, "traceparent": traceparent},
        json_body={"title": "traced create"},
    )

    assert response.status == 201, response.body
    server, spans = traced_trace(collector, trace_id)
    assert_continues(server, trace_id, parent_id)
    assert server.name == "POST /api/v1/tasks"
    assert server.attributes["http.route"] == "/api/v1/tasks"
    assert server.attributes["http.response.status_code"] == 201
    assert_one_tree(spans, server)

    [service] = named(spans, "tasks.task_create")
    assert service.parent_span_id == server.span_id
    inserts = [span for span in sql_spans(below(spans, service)) if span.name == "INSERT"]
    assert any('"tasks_task"' in span.attributes["db.statement"] for span in inserts), inserts
    # The new row is put in the cache when the transaction commits, still inside the service call.
    assert named(below(spans, service), "cache.set")


def test_graphql_requests_continue_the_callers_trace(servers: Servers, collector: Collector, data: Data) -> None:
    read_parent, read_trace, read_parent_id = new_parent()
    task_id = data.fresh_task()
    read = graphql(
        servers.wsgi,
        "query TracedTask($id: ID!) { task(id: $id) { title } }",
        {"id": task_id},
        headers={**data.http_auth, "traceparent": read_parent},
    )
    write_parent, write_trace, write_parent_id = new_parent()
    write = graphql(
        servers.wsgi,
        'mutation TracedCreate { createTask(input: {title: "traced over GraphQL"}) { id } }',
        headers={**data.http_auth, "traceparent": write_parent},
    )

    assert read.status == 200 and read.json()["data"]["task"]["title"].startswith("traced"), read.body
    assert write.status == 200 and "errors" not in write.json(), write.body
    for trace_id, parent_id, service_name in (
        (read_trace, read_parent_id, "tasks.task_get"),
        (write_trace, write_parent_id, "tasks.task_create"),
    ):
        server, spans = traced_trace(collector, trace_id)
        assert_continues(server, trace_id, parent_id)
        assert server.name == "POST /graphql/"
        assert server.attributes["http.route"] == "/graphql/"
        assert server.attributes["http.response.status_code"] == 200
        assert_one_tree(spans, server)
        [service] = named(spans, service_name)
        assert sql_spans(below(spans, service)), f"{service_name} ran no traced statement"
        assert named(spans, "cache.get")


def test_without_a_valid_traceparent_a_new_trace_starts(servers: Servers, collector: Collector, data: Data) -> None:
    """No header, or a malformed one: the SERVER span is the root of a trace of its own; the access
    line names that trace."""
    for headers in (
        {},
        {"traceparent": "00-not-a-trace-id-01"},
        {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"},
    ):
        request_id = f"new-trace-{uuid.uuid4().hex}"
        response = http(
            servers.wsgi,
            "GET",
            f"/api/v1/tasks/{data.fresh_task()}",
            headers={**data.http_auth, **headers, "X-Request-ID": request_id},
        )
        assert response.status == 200

        line = wait_for_access_line(servers.wsgi, request_id)
        assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"]) and line["trace_id"] != "0" * 32
        server, spans = traced_trace(collector, line["trace_id"])
        assert server.parent_span_id == "", headers
        assert server.span_id == line["span_id"]
        assert named(spans, "tasks.task_get")


def test_an_unsampled_parent_records_nothing(servers: Servers, collector: Collector, data: Data) -> None:
    """The default sampler follows the parent: a caller that decided not to sample gets no spans."""
    unsampled_trace = uuid.uuid4().hex
    sampled, sampled_trace, _ = new_parent()

    skipped = http(
        servers.wsgi,
        "GET",
        f"/api/v1/tasks/{data.fresh_task()}",
        headers={**data.http_auth, "traceparent": f"00-{unsampled_trace}-{uuid.uuid4().hex[:16]}-00"},
    )
    recorded = http(servers.wsgi, "GET", "/api/v1/tasks/me", headers={**data.http_auth, "traceparent": sampled})

    assert skipped.status == recorded.status == 200
    traced_trace(collector, sampled_trace)  # the sampled request was exported: the pipeline is flowing
    time.sleep(0.5)  # several export periods more for the other worker
    assert collector.trace(unsampled_trace) == []


def test_a_server_fault_marks_the_span_an_error_and_a_refusal_does_not(
    servers: Servers, collector: Collector, data: Data
) -> None:
    broken, missing = new_parent(), new_parent()

    fault = http(
        servers.wsgi, "GET", f"/api/v1/tasks/{data.broken_task()}", headers={**data.http_auth, "traceparent": broken[0]}
    )
    refusal = http(
        servers.wsgi, "GET", f"/api/v1/tasks/{UNKNOWN_ID}", headers={**data.http_auth, "traceparent": missing[0]}
    )

    assert (fault.status, refusal.status) == (500, 404)
    fault_span, _ = traced_trace(collector, broken[1])
    refusal_span, refusal_spans = traced_trace(collector, missing[1])
    assert fault_span.attributes["http.response.status_code"] == 500
    assert fault_span.status_code == 2  # ERROR
    assert refusal_span.attributes["http.response.status_code"] == 404
    assert refusal_span.status_code == 0
    assert named(refusal_spans, "tasks.task_get")


# -- gRPC -------------------------------------------------------------------------------------------------------


def test_a_grpc_call_continues_the_trace_sent_in_its_metadata(
    servers: Servers, collector: Collector, data: Data
) -> None:
    traceparent, trace_id, parent_id = new_parent()
    task_id = data.fresh_task()

    code, response, _ = grpc_call(
        servers.grpc, "GetTask", pb.GetTaskRequest(id=task_id), (*data.grpc_auth, ("traceparent", traceparent))
    )

    assert code == grpc.StatusCode.OK and response.task.id == task_id
    server, spans = traced_trace(collector, trace_id)
    assert_continues(server, trace_id, parent_id)
    assert server.name == "tasks.v1.TaskService/GetTask"
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.service"] == "tasks.v1.TaskService"
    assert server.attributes["rpc.method"] == "GetTask"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert server.status_code == 0
    assert server.service == "taskhub-grpc"
    assert_one_tree(spans, server)
    [selector] = named(spans, "tasks.task_get")
    assert selector.parent_span_id == server.span_id
    assert named(below(spans, selector), "cache.get")
    assert any("tasks_task" in span.attributes["db.statement"] for span in sql_spans(below(spans, selector)))


def test_grpc_create_and_its_failures(servers: Servers, collector: Collector, data: Data) -> None:
    created, missing, broken = new_parent(), new_parent(), new_parent()

    create = grpc_call(
        servers.grpc,
        "CreateTask",
        pb.CreateTaskRequest(title="traced over gRPC"),
        (*data.grpc_auth, ("traceparent", created[0])),
    )
    not_found = grpc_call(
        servers.grpc, "GetTask", pb.GetTaskRequest(id=UNKNOWN_ID), (*data.grpc_auth, ("traceparent", missing[0]))
    )
    internal = grpc_call(
        servers.grpc, "GetTask", pb.GetTaskRequest(id=data.broken_task()), (*data.grpc_auth, ("traceparent", broken[0]))
    )

    assert [create[0], not_found[0], internal[0]] == [
        grpc.StatusCode.OK,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INTERNAL,
    ]
    server, spans = traced_trace(collector, created[1])
    assert_continues(server, created[1], created[2])
    assert server.name == "tasks.v1.TaskService/CreateTask"
    [service] = named(spans, "tasks.task_create")
    assert named(below(spans, service), "cache.set")
    assert any(span.name == "INSERT" for span in sql_spans(below(spans, service)))

    refusal, _ = traced_trace(collector, missing[1])
    assert (refusal.attributes["rpc.grpc.status_code"], refusal.status_code) == (5, 0)  # NOT_FOUND, unset
    fault, _ = traced_trace(collector, broken[1])
    assert (fault.attributes["rpc.grpc.status_code"], fault.status_code) == (13, 2)  # INTERNAL, ERROR


def test_a_grpc_call_without_traceparent_starts_a_new_trace(servers: Servers, collector: Collector, data: Data) -> None:
    request_id = f"grpc-new-trace-{uuid.uuid4().hex}"
    code, _, trailers = grpc_call(
        servers.grpc,
        "GetTask",
        pb.GetTaskRequest(id=data.fresh_task()),
        (*data.grpc_auth, ("x-request-id", request_id)),
    )

    assert code == grpc.StatusCode.OK and trailers["x-request-id"] == request_id
    line = wait_for_access_line(servers.grpc, request_id)
    server, _ = traced_trace(collector, line["trace_id"])
    assert server.parent_span_id == "" and server.span_id == line["span_id"]
    assert server.name == "tasks.v1.TaskService/GetTask"


# -- Redis ------------------------------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_commands_are_spans_of_the_request(servers: Servers, collector: Collector, data: Data) -> None:
    http_parent, grpc_parent = new_parent(), new_parent()

    assert (
        http(
            servers.wsgi,
            "GET",
            f"/api/v1/tasks/{data.fresh_task()}",
            headers={**data.http_auth, "traceparent": http_parent[0]},
        ).status
        == 200
    )
    code, _, _ = grpc_call(
        servers.grpc,
        "GetTask",
        pb.GetTaskRequest(id=data.fresh_task()),
        (*data.grpc_auth, ("traceparent", grpc_parent[0])),
    )
    assert code == grpc.StatusCode.OK

    database = int(urlsplit(settings.REDIS_URL).path.strip("/") or 0)
    for _, trace_id, parent_id in (http_parent, grpc_parent):
        server, spans = traced_trace(collector, trace_id)
        assert_continues(server, trace_id, parent_id)
        redis = [span for span in spans if span.attributes.get("db.system") == "redis"]
        assert redis and all(span.scope == "opentelemetry.instrumentation.redis" for span in redis)
        assert all(span.attributes.get("db.redis.database_index") == database for span in redis)
        # The cache read of the task is one Redis GET below the `cache.get` span.
        gets = [span for span in named(spans, "cache.get") if any(s.name == "GET" for s in below(spans, span))]
        assert gets, [(span.name, span.parent_span_id) for span in spans]
        assert_one_tree(spans, server)


# -- forking and ASGI -------------------------------------------------------------------------------------------


def test_every_forked_gunicorn_worker_exports_its_spans(servers: Servers, collector: Collector, data: Data) -> None:
    """Tracing is set up in each worker after the fork: spans arrive from both workers' pids."""
    worker_pids = _worker_pids(servers.wsgi)
    assert len(worker_pids) == 2, servers.wsgi.stderr
    traces: list[str] = []
    statuses: list[int] = []

    def send() -> None:
        traceparent, trace_id, _ = new_parent()
        traces.append(trace_id)
        headers = {**data.http_auth, "traceparent": traceparent}
        statuses.append(http(servers.wsgi, "GET", "/api/v1/tasks/me", headers=headers).status)

    exporting: set[int] = set()
    for _ in range(10):  # bursts of parallel requests on new connections, until both workers served some
        burst = [threading.Thread(target=send) for _ in range(8)]
        for thread in burst:
            thread.start()
        for thread in burst:
            thread.join()
        spans = collector.wait_for(
            lambda span: span.kind == "SERVER" and span.trace_id in traces, count=len(traces), timeout=10
        )
        exporting = {span.pid for span in spans}  # type: ignore[misc]
        if len(exporting) == 2:
            break

    assert set(statuses) == {200}
    assert exporting == worker_pids, (exporting, worker_pids)
    assert servers.wsgi.process is not None and servers.wsgi.process.pid not in exporting  # not the master


def test_asgi_under_uvicorn_workers_records_spans(servers: Servers, collector: Collector, data: Data) -> None:
    rest_parent, graphql_parent = new_parent(), new_parent()
    task_id = data.fresh_task()

    rest = http(
        servers.asgi, "GET", f"/api/v1/tasks/{task_id}", headers={**data.http_auth, "traceparent": rest_parent[0]}
    )
    query = graphql(
        servers.asgi,
        "query AsgiTask($id: ID!) { task(id: $id) { id } }",
        {"id": task_id},
        headers={**data.http_auth, "traceparent": graphql_parent[0]},
    )

    assert rest.status == 200 and rest.headers.get("server") == "uvicorn"
    assert query.status == 200 and query.json()["data"]["task"]["id"] == task_id
    booted = _worker_pids(servers.asgi)
    for _, trace_id, parent_id in (rest_parent, graphql_parent):
        server, spans = traced_trace(collector, trace_id)
        assert_continues(server, trace_id, parent_id)
        assert server.service == "taskhub-asgi" and server.pid in booted
        assert_one_tree(spans, server)
        assert named(spans, "tasks.task_get") and named(spans, "cache.get")
    rest_server, rest_spans = traced_trace(collector, rest_parent[1])
    assert rest_server.name == "GET /api/v1/tasks/{task_id}"
    assert rest_server.attributes["http.response.status_code"] == 200
    # The view runs on another thread under ASGI; its statements still land in the request's trace.
    assert sql_spans(below(rest_spans, named(rest_spans, "tasks.task_get")[0]))


# -- the switches -----------------------------------------------------------------------------------------------


def _concerns(server: Server) -> dict[str, Any]:
    response = http(server, "GET", "/health", headers={"Authorization": f"Bearer {os.environ['METRICS_TOKEN']}"})
    assert response.status == 200, response.body
    return response.json()["concerns"]  # type: ignore[no-any-return]


def _exercise(server: Server, data: Data, traceparent: str) -> None:
    headers = {**data.http_auth, "traceparent": traceparent}
    assert http(server, "GET", f"/api/v1/tasks/{data.fresh_task()}", headers=headers).status == 200
    assert http(server, "POST", "/api/v1/tasks", headers=headers, json_body={"title": "untraced"}).status == 201
    assert graphql(server, "{ me { id } }", headers=headers).status == 200


def test_by_default_nothing_is_recorded_or_exported(
    servers: Servers, collector: Collector, default_collector: Collector | None, data: Data
) -> None:
    """No OTEL_* variable: tracing is off (the SDK alone would default to OTLP on localhost:4318)."""
    concerns = _concerns(servers.default)
    assert (concerns["tracing"], concerns["tracing_exporters"]) == (False, [])
    assert _concerns(servers.wsgi)["tracing"] is True  # the same check says so when it is on

    traceparent, trace_id, _ = new_parent()
    _exercise(servers.default, data, traceparent)
    control, control_trace, _ = new_parent()
    assert (
        http(servers.wsgi, "GET", "/api/v1/tasks/me", headers={**data.http_auth, "traceparent": control}).status == 200
    )

    traced_trace(collector, control_trace)
    time.sleep(0.5)
    assert collector.trace(trace_id) == []
    if default_collector is not None:  # (spans of other processes on this machine are not its business)
        worker = _worker_pids(servers.default)
        assert default_collector.trace(trace_id) == []
        assert default_collector.spans(lambda span: span.pid in worker) == []
    assert console_spans(servers.default.stdout) == []


def test_otel_sdk_disabled_wins_over_an_exporter(servers: Servers, collector: Collector, data: Data) -> None:
    concerns = _concerns(servers.disabled)
    assert (concerns["tracing"], concerns["tracing_exporters"]) == (False, [])

    traceparent, trace_id, _ = new_parent()
    _exercise(servers.disabled, data, traceparent)
    control, control_trace, _ = new_parent()
    assert (
        http(servers.wsgi, "GET", "/api/v1/tasks/me", headers={**data.http_auth, "traceparent": control}).status == 200
    )

    traced_trace(collector, control_trace)
    time.sleep(0.5)
    assert collector.trace(trace_id) == []
    assert collector.spans(lambda span: span.service == "taskhub-disabled") == []
    assert console_spans(servers.disabled.stdout) == []


def test_the_console_exporter_prints_the_spans_on_stdout(servers: Servers, data: Data) -> None:
    assert _concerns(servers.console)["tracing_exporters"] == ["console"]
    traceparent, trace_id, parent_id = new_parent()
    task_id = data.fresh_task()

    response = http(
        servers.console, "GET", f"/api/v1/tasks/{task_id}", headers={**data.http_auth, "traceparent": traceparent}
    )

    assert response.status == 200
    deadline = time.monotonic() + 10
    while True:
        spans = [
            span
            for span in console_spans(list(servers.console.stdout))
            if span["context"]["trace_id"] == f"0x{trace_id}"
        ]
        if any(span["kind"] == "SpanKind.SERVER" for span in spans) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [server] = [span for span in spans if span["kind"] == "SpanKind.SERVER"]
    assert server["name"] == "GET /api/v1/tasks/{task_id}"
    assert server["parent_id"] == f"0x{parent_id}"
    assert server["attributes"]["http.route"] == "/api/v1/tasks/{task_id}"
    assert server["attributes"]["http.response.status_code"] == 200
    names = {span["name"] for span in spans}
    assert {"tasks.task_get", "cache.get"} <= names
    assert any(span["attributes"].get("db.system") in ("sqlite", "postgresql") for span in spans)


def test_a_dead_collector_neither_breaks_nor_slows_requests(servers: Servers, data: Data) -> None:
    """Spans are exported from a background thread: requests do not wait on a collector that refuses
    connections (the exporter retries for up to 10 s per batch)."""
    concerns = _concerns(servers.dead)
    assert (concerns["tracing"], concerns["tracing_exporters"]) == (True, ["otlp"])
    task_id = data.fresh_task()
    timings: dict[str, list[float]] = {"dead": [], "default": []}

    for _ in range(25):  # interleaved, so both see the same machine load
        for name in timings:
            server = getattr(servers, name)
            traceparent, _, _ = new_parent()
            response = http(
                server, "GET", f"/api/v1/tasks/{task_id}", headers={**data.http_auth, "traceparent": traceparent}
            )
            assert response.status == 200, (name, response.body)
            timings[name].append(response.seconds)
        time.sleep(0.02)  # let the exporter's batches (and its failures) happen between requests

    dead, baseline = statistics.median(timings["dead"]), statistics.median(timings["default"])
    assert dead < max(3 * baseline, baseline + 0.05), (timings["dead"], timings["default"])
    assert max(timings["dead"]) < 1.0, timings["dead"]
    # The exports were really attempted, and failed, meanwhile (logged by the SDK's exporter).
    deadline = time.monotonic() + 15
    while not any(
        entry["logger"].startswith("opentelemetry.exporter") and "Connection refused" in entry["message"]
        for entry in json_lines(servers.dead.stdout)
    ):
        assert time.monotonic() < deadline, servers.dead.output()[-3000:]
        time.sleep(0.2)


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in list(lines) if line.startswith('{"')]
