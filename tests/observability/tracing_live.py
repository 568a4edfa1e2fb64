"""Real servers and a real OTLP collector for the tracing and logging tests.

Tracing is configured once per process from the environment (observability.tracing.configure() in
ObservabilityConfig.ready()) and OpenTelemetry's global tracer provider can be set only once, so these
tests never trace in the pytest process: they start the production servers — gunicorn (WSGI, forked
gthread workers), gunicorn + uvicorn_worker.UvicornWorker (ASGI), `manage.py grpcserver` — against the
pytest database with the OTEL_* variables of each scenario, and read what they export:

- `Collector`: an HTTP server on a free port taking OTLP/HTTP `POST /v1/traces` (protobuf, gzip or
  not), decoding each body with ExportTraceServiceRequest into `Span`s;
- `console_spans`: the spans the console exporter printed (pretty-printed JSON objects on stdout);
- `Server`: one process group, its stdout and stderr collected line by line, stopped (SIGTERM, then
  SIGKILL of the whole group) by `stop()`, which fixtures call in `finally`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from django.conf import settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.live import free_port, test_database_url

BASE_DIR = Path(settings.BASE_DIR)
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
START_TIMEOUT = 60.0

# One pair of keys for every server of a test session, so a token one server signs is good on the others.
SECRET_KEY = secrets.token_urlsafe(50)
JWT_SIGNING_KEY = secrets.token_urlsafe(50)
# The servers' cache keys: their own, so nothing another test left in a shared Redis is read back.
CACHE_KEY_PREFIX = f"taskhub-live-{secrets.token_hex(4)}"

SPAN_KIND = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


# -- ports, database, environment -----------------------------------------------------------------------------


# What the test run's own environment may say that a scenario must set itself (or leave unset).
_SCENARIO_VARIABLES = (
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_DEBUG",
    "DATABASE_URL",
    "REDIS_URL",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "PROMETHEUS_MULTIPROC_DIR",
    "GUNICORN_WORKERS",
    "GUNICORN_BIND",
    "GUNICORN_THREADS",
    "WEB_CONCURRENCY",
    "GUNICORN_CMD_ARGS",
)


def server_env(**overrides: str | None) -> dict[str, str]:
    """The production settings against the pytest database and cache; `overrides` set (or, as None,
    remove) variables. No OTEL_* variable is inherited: each scenario names its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in _SCENARIO_VARIABLES}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "JWT_SIGNING_KEY": JWT_SIGNING_KEY,
            "SECURE_SSL_REDIRECT": "false",
            "RATE_LIMITS_ENABLED": "false",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL or "",
            "CACHE_KEY_PREFIX": CACHE_KEY_PREFIX,
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def otlp_env(collector: Collector, service_name: str, **overrides: str | None) -> dict[str, str | None]:
    """The OTEL_* variables of a server exporting to `collector` over OTLP/HTTP, quickly."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **overrides,
    }


# -- the collector --------------------------------------------------------------------------------------------


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(items: Iterable[Any]) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    kind: str  # SERVER, INTERNAL, CLIENT, ...
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    scope: str

    @property
    def service(self) -> str | None:
        return self.resource.get("service.name")

    @property
    def pid(self) -> int | None:
        return self.resource.get("process.pid")


def decode_export(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=SPAN_KIND.get(span.kind, str(span.kind)),
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        status_code=span.status.code,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


class Collector:
    """An OTLP/HTTP trace receiver on 127.0.0.1: `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT names."""

    def __init__(self, port: int = 0) -> None:
        self._spans: list[Span] = []
        self._lock = threading.Lock()
        self.exports = 0
        self.rejected: list[str] = []  # paths or bodies it could not take: a test fails on any
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                try:
                    if self.path != "/v1/traces":
                        raise ValueError(f"unexpected path {self.path}")
                    if encoding == "gzip":
                        body = gzip.decompress(body)
                    elif encoding == "deflate":
                        body = zlib.decompress(body)
                    spans = decode_export(body)
                except Exception as exc:
                    collector.rejected.append(repr(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                with collector._lock:
                    collector._spans.extend(spans)
                    collector.exports += 1
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-collector", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def spans(self, predicate: Callable[[Span], bool] = lambda span: True) -> list[Span]:
        with self._lock:
            return [span for span in self._spans if predicate(span)]

    def trace(self, trace_id: str) -> list[Span]:
        return self.spans(lambda span: span.trace_id == trace_id)

    def wait_for(self, predicate: Callable[[Span], bool], *, count: int = 1, timeout: float = 10.0) -> list[Span]:
        """The spans matching `predicate` once there are at least `count` of them (all found at timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.spans(predicate)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def wait_for_trace(self, trace_id: str, needed: Callable[[list[Span]], bool], timeout: float = 10.0) -> list[Span]:
        """The spans of `trace_id` once `needed(spans)` holds (or whatever arrived by the timeout).

        A request's spans end — and are exported — in more than one batch: the server span last."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.trace(trace_id)
            if needed(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def has_server_span(spans: list[Span]) -> bool:
    return any(span.kind == "SERVER" for span in spans)


# -- the console exporter -------------------------------------------------------------------------------------


def console_spans(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The spans ConsoleSpanExporter printed: each a JSON object spread over lines, from a line `{` to a
    line `}` (log lines are one-line JSON objects and are skipped)."""
    spans, block = [], None
    for line in lines:
        if block is None:
            if line == "{":
                block = [line]
        else:
            block.append(line)
            if line == "}":
                parsed = json.loads("\n".join(block))
                if isinstance(parsed, dict) and "context" in parsed and "kind" in parsed:
                    spans.append(parsed)
                block = None
    return spans


# -- server processes -----------------------------------------------------------------------------------------


@dataclass
class Server:
    """A server process (and its children: its own process group), with everything it prints."""

    name: str
    command: list[str]
    env: dict[str, str] = field(repr=False)
    port: int
    grpc: bool = False
    stop_grace: float = 10.0  # seconds between SIGTERM and SIGKILL
    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    stdout: list[str] = field(default_factory=list, repr=False)
    stderr: list[str] = field(default_factory=list, repr=False)
    _readers: list[threading.Thread] = field(default_factory=list, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.process = subprocess.Popen(
            self.command,
            cwd=BASE_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: stop() ends the workers too
        )
        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            reader = threading.Thread(target=_read_lines, args=(stream, lines), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()[-4000:]}")
            if self._answers():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start within {timeout} s:\n{self.output()[-4000:]}")

    def _answers(self) -> bool:
        if self.grpc:
            with grpc.insecure_channel(self.target) as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=0.5)
                    return True
                except grpc.FutureTimeoutError:
                    return False
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL to whatever is left after `stop_grace`; then the output is complete."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, self.stop_grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                if sig == signal.SIGTERM:
                    # The workers are in the same group: make sure none outlives the master.
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                break
            except subprocess.TimeoutExpired:
                continue
        for reader in self._readers:
            reader.join(5)

    def mark(self) -> tuple[int, int]:
        """Where the output is now: `since(mark)` gives what was printed after."""
        return len(self.stdout), len(self.stderr)

    def since(self, mark: tuple[int, int]) -> tuple[list[str], list[str]]:
        return self.stdout[mark[0] :], self.stderr[mark[1] :]

    def output(self) -> str:
        return "\n".join(self.stdout) + "\n--- stderr ---\n" + "\n".join(self.stderr)


def _read_lines(stream: Any, lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


def gunicorn_wsgi(name: str, env: Mapping[str, str | None], *, workers: int = 2) -> Server:
    port = free_port()
    command = [GUNICORN, "-c", "config/gunicorn.py", "config.wsgi:application"]
    return Server(
        name, command, server_env(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers), **env), port
    )


def gunicorn_asgi(name: str, env: Mapping[str, str | None], *, workers: int = 1) -> Server:
    port = free_port()
    command = [GUNICORN, "-c", "config/gunicorn.py", "-k", "uvicorn_worker.UvicornWorker", "config.asgi:application"]
    return Server(
        name, command, server_env(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers), **env), port
    )


def grpcserver(name: str, env: Mapping[str, str | None]) -> Server:
    port = free_port()
    command = [PYTHON, "manage.py", "grpcserver", "--port", str(port)]
    return Server(name, command, server_env(**env), port, grpc=True)


def start_all(servers: list[Server]) -> list[Server]:
    """Start the servers at once (each takes seconds to import Django) and wait until all answer.
    On failure the caller's `finally` still stops every one started."""
    for server in servers:
        server.start()
    for server in servers:
        server.wait_ready()
    return servers


def stop_all(servers: Iterable[Server]) -> None:
    for server in servers:
        server.stop()


# -- traceparent ------------------------------------------------------------------------------------------------


def new_parent() -> tuple[str, str, str]:
    """A fresh sampled W3C parent: (traceparent header, trace id, parent span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


# -- clients --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    server: Server,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    raw_body: bytes | None = None,
    timeout: float = 20.0,
) -> Response:
    """One request on a new connection (so a forking server may hand it to any worker)."""
    sent = dict(headers or {})
    body = raw_body
    if json_body is not None:
        body = json.dumps(json_body).encode()
    if body is not None:
        sent.setdefault("Content-Type", "application/json")
    started = time.perf_counter()
    connection = HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=sent)
        answer = connection.getresponse()
        return Response(
            answer.status,
            {name.lower(): value for name, value in answer.getheaders()},
            answer.read(),
            time.perf_counter() - started,
        )
    finally:
        connection.close()


def graphql(
    server: Server, query: str, variables: Mapping[str, Any] | None = None, *, headers: Mapping[str, str] | None = None
) -> Response:
    return http(server, "POST", "/graphql/", headers=headers, json_body={"query": query, "variables": variables or {}})


def grpc_call(
    server: Server, method: str, request: Any, metadata: Iterable[tuple[str, str]] = (), *, timeout: float = 20.0
) -> tuple[grpc.StatusCode, Any, dict[str, str]]:
    """Call TaskService `method` on a fresh channel: (status code, response or None, trailing metadata)."""
    from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc

    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.TaskServiceStub(channel)
        try:
            response, call = getattr(stub, method).with_call(request, metadata=tuple(metadata), timeout=timeout)
        except grpc.RpcError as error:
            return error.code(), None, dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
        return call.code(), response, dict(call.trailing_metadata() or ())


def access_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The JSON access lines (logger `taskhub.access`) among a server's stdout lines."""
    found = []
    for line in lines:
        if line.startswith("{") and '"taskhub.access"' in line:
            entry = json.loads(line)
            if entry.get("logger") == "taskhub.access":
                found.append(entry)
    return found


def wait_for_access_line(server: Server, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = [entry for entry in access_lines(list(server.stdout)) if entry.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, (request_id, found, server.output()[-3000:])
            return found[0]
        time.sleep(0.05)
