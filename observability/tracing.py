"""OpenTelemetry tracing (docs/operations.md, "Tracing"), configured only by the standard `OTEL_*` variables.

`OTEL_TRACES_EXPORTER` chooses the exporter: `none` (the default: tracing off, nothing recorded),
`console` (spans as JSON on stdout) or `otlp` (OTLP over HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` turns it off whatever else is set.
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_PROPAGATORS` and
the `OTEL_BSP_*` batch settings work as the OpenTelemetry specification says.

What makes spans:
- a SERVER span per HTTP request (observability.middleware) and per gRPC call (the gRPC
  interceptor), both through `server_span`, continuing the caller's W3C `traceparent`;
- the psycopg, sqlite3 and redis instrumentations: a span per SQL statement and per Redis command;
- `core.cache`: `cache.get` / `cache.set` spans; `traced`: a span per service and selector call.

The server spans are our own rather than opentelemetry-instrumentation-django's: that middleware
re-resolves the URL and collects attributes on every request, which alone would spend most of the
cost budget of metrics plus tracing (bench/README.md has the measurements). Ours sets the
semantic-convention attributes it needs and works unchanged under WSGI, ASGI and gRPC.

`configure()` runs in every process from ObservabilityConfig.ready(), before any database or Redis
connection is opened (the instrumentations patch `connect`); under gunicorn that is in each worker,
after the fork. The SDK's batch span processor restarts its export thread in a forked child too.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY  # what `suppress_instrumentation()` sets
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

logger = logging.getLogger(__name__)

tracer = trace.get_tracer("taskhub")

_enabled = False
_configured = False

P = ParamSpec("P")
R = TypeVar("R")


def exporter_names() -> list[str]:
    """The exporters OTEL_TRACES_EXPORTER asks for; empty when tracing is off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [name.strip().lower() for name in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",")]
    return [name for name in names if name and name != "none"]


def enabled() -> bool:
    return _enabled


def configure() -> bool:
    """Install the tracer provider and the instrumentations once per process; True if tracing is on."""
    global _configured, _enabled, tracer
    if _configured:
        return _enabled
    _configured = True
    names = exporter_names()
    if not names:
        return False

    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    # process.pid tells the forked workers of one server apart (and matches the pid gunicorn logs);
    # the service is "taskhub" unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name it.
    attributes: dict[str, Any] = {"process.pid": os.getpid()}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes[SERVICE_NAME] = "taskhub"
    provider = TracerProvider(resource=Resource.create(attributes))
    processors = 0
    for name in names:
        exporter: SpanExporter
        if name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            logger.warning("OTEL_TRACES_EXPORTER=%s is not supported (use none, console or otlp); ignored", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
        processors += 1
    if not processors:  # nothing would receive the spans: do not make them
        return False
    trace.set_tracer_provider(provider)
    tracer = provider.get_tracer("taskhub")  # the SDK's own: no proxy to go through on every span

    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    for instrumentor in (PsycopgInstrumentor(), SQLite3Instrumentor(), RedisInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    _enabled = True
    return True


_NO_SPAN: AbstractContextManager[None] = nullcontext()  # reusable: nullcontext keeps no state


def server_span(
    name: str, carrier: Mapping[str, str], attributes: dict[str, Any]
) -> AbstractContextManager[Span | None]:
    """A SERVER span for one request or call, child of the caller's `traceparent` in `carrier`
    (HTTP headers or gRPC metadata); None when tracing is off, from a context manager that keeps no
    state and does no span work at all.

    When the sampler drops the request, the span does not record, and neither would any child: the
    context then also carries the instrumentations' suppress flag, so the SQL and Redis instrumentations
    skip their work (they check it first) instead of making spans that record nothing. The trace id
    still reaches the log lines. Start, context and end are done by hand, with one context switch, as
    `start_as_current_span` would do with `record_exception=False, set_status_on_exception=False`: the
    protocol hook sets the status from the answer (an aborted call, NOT_FOUND, ... is no server error).
    """
    return _server_span(name, carrier, attributes) if _enabled else _NO_SPAN


@contextmanager
def _server_span(name: str, carrier: Mapping[str, str], attributes: dict[str, Any]) -> Iterator[Span]:
    parent = propagate.extract(carrier)
    span = tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    current = trace.set_span_in_context(span, parent)
    if not span.is_recording():
        current = context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, current)
    token = context.attach(current)
    try:
        yield span
    finally:
        context.detach(token)
        span.end()


def mark_error(span: Span | None, description: str) -> None:
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, description))


@contextmanager
def internal_span(name: str, **attributes: Any) -> Iterator[None]:
    """A child span of the current one (`cache.get`, a service call); nothing when tracing is off or
    the request is not sampled (its span does not record: a child would not either, so skip its cost)."""
    if not _enabled or not trace.get_current_span().is_recording():
        yield
        return
    with tracer.start_as_current_span(name, attributes=attributes or None):
        yield


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a service or selector: one span per call, named `name` (e.g. `tasks.task_create`)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not _enabled or not trace.get_current_span().is_recording():
                return function(*args, **kwargs)
            with tracer.start_as_current_span(name):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def current_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the current span as hex, or (None, None) outside a recorded span."""
    if not _enabled:  # no span is ever recorded: every log record asks
        return None, None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")
