"""Prometheus metrics (docs/operations.md, "Metrics"): defined once here, fed by one hook per protocol.

Every process (each HTTP worker, the gRPC server) counts in its own memory, or, when the
`PROMETHEUS_MULTIPROC_DIR` environment variable names a directory, in files there that `/metrics`
sums over all processes: prometheus_client reads that variable when it is first imported, so it must
be in the environment before the process starts (docs/operations.md, "Metrics").

Labels are bounded by construction: `endpoint` is a route template (`/api/v1/tasks/{task_id}`), a
GraphQL operation (`query TaskList`) or a gRPC method, never a raw path or id; `status` is the HTTP
status or the gRPC code name.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from types import TracebackType
from typing import Any

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.registry import Collector

from observability.switches import Switch

REQUESTS = Counter(
    "api_requests_total",
    "Requests and calls answered, by protocol, method, endpoint and status.",
    ["protocol", "method", "endpoint", "status"],
)
DURATION = Histogram(
    "api_request_duration_seconds",
    "Time from the request's arrival to its answer, by protocol, method and endpoint.",
    ["protocol", "method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ACTIVE = Gauge(
    "api_active_requests",
    "Requests and calls in progress, by protocol.",
    ["protocol"],
    multiprocess_mode="livesum",  # summed over the live processes; a dead worker's share is dropped
)
CACHE_HITS = Counter("api_cache_hits_total", "Cache reads that found the key.")
CACHE_MISSES = Counter("api_cache_misses_total", "Cache reads that did not find the key.")
CACHE_ERRORS = Counter("api_cache_errors_total", "Cache calls that failed and were served without the cache.")
RATE_LIMITED = Counter(
    "api_rate_limit_rejections_total", "Requests and calls refused by a rate limit, by scope.", ["scope"]
)
RATE_LIMIT_ERRORS = Counter(
    "api_rate_limit_errors_total",
    "Rate-limit checks that failed (the counter store was down) and let the call through.",
)

# Live events (docs/events.md): the same families on every protocol.
EVENT_STREAMS = Gauge(
    "api_event_streams_active",
    "Event streams open, by protocol.",
    ["protocol"],
    multiprocess_mode="livesum",
)
EVENTS_DELIVERED = Counter("api_events_delivered_total", "Events handed to stream clients, by protocol.", ["protocol"])
EVENT_STREAMS_ENDED = Counter(
    "api_event_streams_ended_total",
    "Event streams ended, by protocol and reason (client_closed, slow_consumer, credential, shutdown).",
    ["protocol", "reason"],
)
EVENTS_PUBLISHED = Counter("api_events_published_total", "Task events appended to the event log.")
EVENTS_PUBLISH_ERRORS = Counter(
    "api_events_publish_errors_total", "Task events the event log did not take (Redis down): subscribers get a gap."
)


def count_stream(protocol: str, delta: int) -> None:
    if enabled():
        _child(EVENT_STREAMS, protocol).inc(delta)


def count_delivered(protocol: str, events: int) -> None:
    if enabled() and events:
        _child(EVENTS_DELIVERED, protocol).inc(events)


def count_stream_ended(protocol: str, reason: str) -> None:
    if enabled():
        _child(EVENT_STREAMS_ENDED, protocol, reason).inc()


def count_published(*, failed: bool = False) -> None:
    if enabled():
        (EVENTS_PUBLISH_ERRORS if failed else EVENTS_PUBLISHED).inc()


METRICS_ON = Switch("METRICS_ENABLED")


def enabled() -> bool:
    return METRICS_ON()


_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, remembered. labels() validates, builds and looks up the label tuple
    under a lock on every call, which cost more than the increment it leads to; the label sets are
    bounded (route templates, capped GraphQL operation names, gRPC methods, status codes)."""
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def adder(metric: Any) -> Callable[[float], None]:
    """What adds an amount to `metric`, a counter or gauge without labels or a label child: the
    `inc` of its value, which `Counter.inc` and `Gauge.inc`/`dec` end in after checking, on every
    call, that the metric is observable and the amount allowed (three Python calls of the four an
    increment costs). Checked here once instead; the callers add 1, or -1 to a gauge."""
    metric._raise_if_not_observable()  # a labelled parent raises ValueError, as its inc() would
    if getattr(metric, "_is_most_recent", False):  # a "mostrecent" gauge cannot be incremented
        raise RuntimeError("inc must not be used with the mostrecent mode")
    add: Callable[[float], None] = metric._value.inc
    return add


_adders: dict[tuple[Any, ...], Callable[[float], None]] = {}


def label_adder(metric: Any, *values: str) -> Callable[[float], None]:
    """`adder(metric.labels(*values))`, remembered as `_child` remembers the child."""
    key = (metric, *values)
    add = _adders.get(key)
    if add is None:
        add = _adders[key] = adder(_child(metric, *values))
    return add


def observer(histogram: Any) -> Callable[[float], None]:
    """What observes an amount in `histogram`, a histogram without labels or a label child: what
    `Histogram.observe` does without an exemplar (the amount added to the sum, and 1 to the first
    bucket whose upper bound is not below it), its observability check made here once instead of on
    every call, and the bucket found by a bisection in C instead of a Python loop over the bounds.
    The last bound is +Inf, so every amount has its bucket."""
    histogram._raise_if_not_observable()  # a labelled parent raises ValueError, as its observe() would
    add_to_sum: Callable[[float], None] = histogram._sum.inc
    bounds = tuple(histogram._upper_bounds)
    add_to_bucket = tuple(bucket.inc for bucket in histogram._buckets)

    def observe(amount: float) -> None:
        add_to_sum(amount)
        add_to_bucket[bisect_left(bounds, amount)](1)  # the first bound >= amount, as observe() finds it

    return observe


_observers: dict[tuple[Any, ...], Callable[[float], None]] = {}


def label_observer(metric: Any, *values: str) -> Callable[[float], None]:
    """`observer(metric.labels(*values))`, remembered as `label_adder` remembers its adder."""
    key = (metric, *values)
    observe = _observers.get(key)
    if observe is None:
        observe = _observers[key] = observer(_child(metric, *values))
    return observe


class RequestObservation:
    """Counts one request or call: its status and duration when the block ends, and, from
    `start_active` on, one more in `api_active_requests`.

        with observe_request("grpc", "POST", "/tasks.v1.TaskService/GetTask", active=True) as observation:
            ...
            observation.status = "OK"

    The protocol and endpoint can still be set before the block ends (an HTTP request's are known
    once its URL resolved).
    """

    __slots__ = ("_active", "_on", "_started", "endpoint", "method", "protocol", "status")

    def __init__(self, protocol: str, method: str, endpoint: str, *, active: bool = False) -> None:
        self.protocol, self.method, self.endpoint = protocol, method, endpoint
        self.status = "unknown"
        on = METRICS_ON.value  # enabled(), inline: every request asks
        self._on = on if on is not None else METRICS_ON()
        self._active: str | None = None
        self._started = time.perf_counter()
        if active:
            self.start_active(protocol)

    def start_active(self, protocol: str) -> None:
        self.protocol = protocol
        if self._on and self._active is None:
            self._active = protocol
            key = (ACTIVE, protocol)
            (_adders.get(key) or label_adder(*key))(1)  # label_adder(), its lookup inline

    def __enter__(self) -> RequestObservation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self._on:
            return
        elapsed = time.perf_counter() - self._started
        # label_adder() and label_observer(), their lookups inline: every request ends here.
        if self._active is not None:
            key: tuple[Any, ...] = (ACTIVE, self._active)
            (_adders.get(key) or label_adder(*key))(-1)
        key = (REQUESTS, self.protocol, self.method, self.endpoint, self.status)
        (_adders.get(key) or label_adder(*key))(1)
        key = (DURATION, self.protocol, self.method, self.endpoint)
        (_observers.get(key) or label_observer(*key))(elapsed)


observe_request = RequestObservation


# -- GraphQL operation names -------------------------------------------------------------------------
# Operation names are chosen by clients. A name becomes a label value only if it is a plain GraphQL
# name and one of the first GRAPHQL_METRICS_MAX_OPERATIONS distinct names this process has seen;
# any other is counted as "<type> other", so a client cannot grow the series without bound.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_seen_operations: set[str] = set()
_seen_lock = threading.Lock()


def graphql_endpoint(operation_type: str | None, operation_name: str | None) -> str:
    if operation_type is None:
        return "invalid"  # the document did not parse or named no operation to run
    if not operation_name:
        return f"{operation_type} anonymous"
    if _NAME.match(operation_name):
        if operation_name in _seen_operations:
            return f"{operation_type} {operation_name}"
        with _seen_lock:
            if len(_seen_operations) < settings.GRAPHQL_METRICS_MAX_OPERATIONS:
                _seen_operations.add(operation_name)
                return f"{operation_type} {operation_name}"
    return f"{operation_type} other"


# -- route templates ----------------------------------------------------------------------------------
_CONVERTER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


@functools.cache  # routes are the URLconf's patterns: a bounded set, each rewritten once
def route_template(route: str) -> str:
    """Django's `tasks/<uuid:task_id>` → `/tasks/{task_id}` (the OpenAPI spelling)."""
    return "/" + _CONVERTER.sub(r"{\1}", route)


# -- exposition -----------------------------------------------------------------------------------------
def multiprocess_directory() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def registry() -> Collector:
    """What a scrape reads: every process's files in multiprocess mode, else this process."""
    if directory := multiprocess_directory():
        forget_dead_processes(directory)
        collected = CollectorRegistry()
        _FilesCollector(collected, directory)  # type: ignore[no-untyped-call]
        return collected
    return REGISTRY


class _FilesCollector(multiprocess.MultiProcessCollector):
    """prometheus_client's collector of the processes' files, without the files still being created.

    A process makes its file with `open(..., "a+b")` and only then sizes it; a scrape that globbed the
    file in between read zero bytes and failed (`struct.error`, a 500 from /metrics). An empty file
    holds no value yet, so it is skipped. (Files removed between the glob and the read, a dead
    process's live gauges, prometheus_client already skips.)
    """

    def collect(self) -> Any:
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            with contextlib.suppress(FileNotFoundError):
                if os.path.getsize(path) > 0:
                    files.append(path)
        return self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The Prometheus text of every metric."""
    return generate_latest(registry())


def serve(host: str, port: int) -> Any:
    """Serve /metrics on a port of its own (the gRPC server's), in a daemon thread; returns the server."""
    server, _ = start_http_server(port, addr=host, registry=registry())
    return server


_LIVE_GAUGE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def forget_dead_processes(directory: str) -> None:
    """Drop the live gauges of processes that are gone, whatever server ran them.

    gunicorn says when a worker dies (config/gunicorn.py); granian and a crashed gRPC server do not.
    All processes that share the directory share the host (one pod), so a pid that no longer exists
    is a dead process. Counters and histograms of dead processes stay: totals never go backwards.
    """
    for name in os.listdir(directory):
        match = _LIVE_GAUGE.match(name)
        if match and not _alive(int(match.group(1))):
            mark_process_dead(int(match.group(1)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's `child_exit` hook calls this, config/gunicorn.py)."""
    if multiprocess_directory():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
