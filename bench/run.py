"""HTTP benchmark of taskhub: the production server under wrk, next to a plain DRF baseline and next to
its peers (FastAPI, Strawberry on FastAPI, grpcio: bench/peers/) and the bare floors under them.

    .venv/bin/python bench/run.py [--server granian|uvicorn] [--duration 10] [--connections 8] [--markdown]
                              [--rows ROWS] [--no-scale]

Steps: create the PostgreSQL database if it is missing, migrate, create the bench user and 200 tasks
through `tasks.services.task_create`, mint a long-lived access token; start the production server
(granian WSGI, or gunicorn + uvicorn worker for ASGI; `bench.settings`: production settings plus the
baseline route) with one worker pinned to one CPU; run wrk pinned to another CPU against each row (REST,
the baseline and GraphQL, all on the same server in the same run; the peers and taskhub's variants on
servers of their own, pinned to the same CPU, in interleaved groups); print the tables; stop the
servers (also on Ctrl-C or error).
Raw wrk outputs and the server log go to bench/results/<time>/. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LUA_DIR = BENCH_DIR / "wrk"
RESULTS_DIR = BENCH_DIR / "results"
VENV_BIN = Path(sys.executable).parent

# `python bench/run.py` puts bench/ first on sys.path; the project root is what Django needs.
if sys.path and Path(sys.path[0]).resolve() == BENCH_DIR:
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/taskhub_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
BENCH_USERNAME = "bench"
TASK_COUNT = 200
LIST_LIMIT = 50
TOKEN_LIFETIME = 7 * 24 * 3600  # seconds; the run must never see an expired token


TASK_ID = "{task_id}"  # in a Row's path or GraphQL variables: the id of the fixture's first task


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    label: str
    script: str
    path: str  # may contain {task_id}
    query: str = ""  # GraphQL rows: the operation POSTed to `path` (the same body on every request)
    variables: dict[str, Any] | None = None  # a value equal to TASK_ID becomes the task id
    grpc_method: str = ""  # gRPC rows: "tasks.v1.TaskService/GetTask", driven by h2load instead of wrk
    server: str = ""  # which server answers: "" taskhub's (HTTP or gRPC), else a key of SERVER_VARIANTS

    def body(self, task_id: str) -> str:
        """The JSON body of a GraphQL row ("" for the REST rows, whose Lua scripts set their own)."""
        if not self.query:
            return ""
        payload: dict[str, Any] = {"query": self.query}
        if self.variables is not None:
            payload["variables"] = {k: task_id if v == TASK_ID else v for k, v in self.variables.items()}
        return json.dumps(payload, separators=(",", ":"))


# Every scalar field of the GraphQL Task type: what the REST rows return for a task.
TASK_FIELDS = (
    "id ownerId title description priority status completed dueDate tags createdAt updatedAt completedAt version"
)
# The task of row (c)'s wrk/post.lua, as a GraphQL input.
CREATE_INPUT = {
    "title": "Benchmark task",
    "description": "Created by wrk through the GraphQL mutation createTask.",
    "priority": "HIGH",
    "status": "IN_PROGRESS",
    "tags": ["bench", "Load", "bench"],
    "dueDate": "2031-01-31T17:00:00Z",
}

ROWS = (
    Row("a", "GET one task (JWT, cache hit)", "get.lua", "/api/v1/tasks/{task_id}"),
    Row("b", f"GET list of {LIST_LIMIT} (JWT, cached page)", "get.lua", f"/api/v1/tasks?limit={LIST_LIMIT}"),
    Row("c", "POST create (JWT)", "post.lua", "/api/v1/tasks"),
    Row("d", "GET one task, plain DRF baseline", "get.lua", "/bench/baseline/tasks/{task_id}"),
    Row(
        "e",
        "GraphQL task(id) (JWT, cache hit)",
        "graphql.lua",
        "/graphql/",
        f"query Task($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} }} }}",
        {"id": TASK_ID},
    ),
    Row(
        "f",
        f"GraphQL tasks(first: {LIST_LIMIT}) (JWT, cached page)",
        "graphql.lua",
        "/graphql/",
        f"query Tasks {{ tasks(first: {LIST_LIMIT}) {{ edges {{ node {{ {TASK_FIELDS} }} }}"
        " pageInfo { hasNextPage endCursor } } }",
    ),
    Row(
        "g",
        "GraphQL createTask (JWT)",
        "graphql.lua",
        "/graphql/",
        f"mutation Create($input: TaskCreateInput!) {{ createTask(input: $input) {{ {TASK_FIELDS} }} }}",
        {"input": CREATE_INPUT},
    ),
)
GRPC_ROWS = (
    Row("h", "gRPC GetTask (JWT, cache hit)", "", "", grpc_method="tasks.v1.TaskService/GetTask"),
    Row(
        "i",
        f"gRPC ListTasks(page_size={LIST_LIMIT}) (JWT, cached page)",
        "",
        "",
        grpc_method="tasks.v1.TaskService/ListTasks",
    ),
    Row("j", "gRPC CreateTask (JWT)", "", "", grpc_method="tasks.v1.TaskService/CreateTask"),
)
# The cost of metrics and tracing: the request of (a) against more servers, identical to the
# default one except for the observability environment (SERVER_VARIANTS).
COST_ROWS = (
    Row("k", "GET one task, metrics and tracing off", "get.lua", "/api/v1/tasks/{task_id}", server="bare"),
    Row("l", "GET one task, metrics + tracing on", "get.lua", "/api/v1/tasks/{task_id}", server="observed"),
    Row("m", "GET one task, metrics + tracing 5%", "get.lua", "/api/v1/tasks/{task_id}", server="sampled"),
    Row("n", "GET one task, metrics (multiprocess) only", "get.lua", "/api/v1/tasks/{task_id}", server="metrics"),
    Row("o", "GET one task, metrics + tracing 0%", "get.lua", "/api/v1/tasks/{task_id}", server="unsampled"),
)
# The peers (bench/peers/, bench/README.md "The peers"): what a user would pick instead of taskhub, with
# the same concerns, next to taskhub's rows, and the floors under them; plus taskhub's row (a) in the
# full profile, with the cache off and with two workers. Each on a server of its own (SERVER_VARIANTS).
TASK_QUERY = next(row for row in ROWS if row.key == "e")
PAGE_QUERY = next(row for row in ROWS if row.key == "f")
PEER_ROWS = (
    Row("p", "GET one task, full profile", "get.lua", "/api/v1/tasks/{task_id}", server="full"),
    Row("q", "FastAPI peer: GET one task", "get.lua", "/api/v1/tasks/{task_id}", server="peer-rest"),
    Row("r", "FastAPI peer: GET one task, full profile", "get.lua", "/api/v1/tasks/{task_id}", server="peer-rest-full"),
    Row(
        "s",
        f"FastAPI peer: GET list of {LIST_LIMIT}",
        "get.lua",
        f"/api/v1/tasks?limit={LIST_LIMIT}",
        server="peer-rest",
    ),
    Row(
        "t",
        "Strawberry peer: task(id)",
        "graphql.lua",
        "/graphql/",
        TASK_QUERY.query,
        TASK_QUERY.variables,
        server="peer-graphql",
    ),
    Row(
        "u",
        f"Strawberry peer: tasks(first: {LIST_LIMIT})",
        "graphql.lua",
        "/graphql/",
        PAGE_QUERY.query,
        server="peer-graphql",
    ),
    Row("v", "grpcio peer: GetTask", "", "", grpc_method="tasks.v1.TaskService/GetTask", server="peer-grpc"),
    Row("w", "grpcio floor: one Redis GET", "", "", grpc_method="floor.Floor/Get", server="grpc-floor-redis"),
    Row("x", "grpcio floor: constant reply", "", "", grpc_method="floor.Floor/Get", server="grpc-floor-constant"),
    Row("y", "FastAPI floor: a constant dict", "get.lua", "/floor", server="peer-floor"),
    Row("z", "GET one task, cache off (miss)", "get.lua", "/api/v1/tasks/{task_id}", server="nocache"),
    Row("W", "GET one task, 2 granian workers", "get.lua", "/api/v1/tasks/{task_id}", server="two"),
    # Only with --twin: (a) on a server whose environment differs by what --twin gives, to try a setting
    # side by side with the default server instead of in two runs.
    Row("A", "GET one task, the --twin server", "get.lua", "/api/v1/tasks/{task_id}", server="twin"),
)
# The row that runs only when --twin gives its server's environment.
TWIN_ROW = "A"
# What --twin cannot set: granian's command line (Server) gives these, and a command-line option wins
# over its variable. GRANIAN_BLOCKING_THREADS can: the command line takes it from the environment.
TWIN_REFUSED = frozenset({"GRANIAN_INTERFACE", "GRANIAN_WORKERS", "GRANIAN_HOST", "GRANIAN_PORT"})
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ROWS = ROWS + GRPC_ROWS + COST_ROWS + PEER_ROWS
# Comparable rows run next to each other in time. A tuple is a group measured interleaved (`--rounds`
# rounds of duration/rounds seconds, the order rotated every round; see run_interleaved): (a) with its
# --twin row, its peers, its full profile, its cache-off and two-worker twins and the bare floor; the
# cost of metrics and tracing (k to o); GraphQL's get-by-id and its peer; gRPC's GetTask, its peer and
# the floors; the lists.
# The baseline (d) runs first, alone; the writes (c, g, j) last, because each create orphans the cached
# list pages the list rows read.
RUN_ORDER: tuple[str | tuple[str, ...], ...] = (
    "d",
    ("a", "A", "q", "p", "r", "z", "W", "y"),
    ("k", "n", "o", "m", "l"),
    ("e", "t"),
    ("h", "v", "w", "x"),
    ("b", "s", "f", "u"),
    "i",
    "c",
    "g",
    "j",
)
# The budget: metrics plus tracing may cost at most this share of (k)'s throughput. It is judged on row
# (m), tracing sampled as docs/operations.md ("Tracing") recommends for production; (l), every request
# traced, cannot meet it with the Python SDK (bench/README.md, "What metrics and tracing cost").
OBSERVABILITY_COST_TARGET = 0.15
# The head sampling docs/operations.md recommends for production: the share of the traces that start here.
RECOMMENDED_SAMPLING_RATIO = "0.05"


@dataclass(slots=True)
class Result:
    row: Row
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    # The latency (ms) at each tenth of a percent from 90 to 99.9, and at 100 (the slowest request):
    # what pools the p99 of a row measured in slices (`pooled_percentile`).
    percentiles: dict[float, float] = field(default_factory=dict)
    slice_p99_ms: float | None = None  # a row measured in slices: the highest p99 of one slice
    # A row measured in slices: the req/s of each round, in round order, and its group's rows
    # (`round_ratios`).
    round_rps: list[float] = field(default_factory=list)
    group: tuple[str, ...] = ()
    non2xx: int = 0
    graphql_errors: int = 0  # 2xx responses whose body contains "errors" (GraphQL rows)
    cpu_ms: float | None = None  # server worker CPU time (user + system) per request
    cpu_system_ms: float | None = None  # the system (kernel) part of cpu_ms
    pg_connections: float | None = None  # new PostgreSQL sessions per request
    socket_errors: dict[str, int] = field(default_factory=dict)
    failure: str = ""
    skipped: str = ""  # why the row did not run (a peer that is not there); not a failure

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class BenchError(Exception):
    pass


# -- options ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of measurement per row (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load before each row (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="open connections of wrk (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads, all on the load CPU (default 1)")
    parser.add_argument(
        "--server", choices=SERVERS, default="granian", help="granian (WSGI, default) or uvicorn (ASGI)"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--server-cpu", default="0", help="CPU list for the server (taskset -c; default 0)")
    parser.add_argument("--load-cpu", default="1", help="CPU list for wrk (taskset -c; default 1)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    all_rows = "".join(row.key for row in ROWS if row.key != TWIN_ROW)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="each group of comparable rows (RUN_ORDER) runs interleaved in this many rounds of duration/rounds s"
        " (default 5)",
    )
    parser.add_argument("--rows", default=all_rows, help=f"which rows to run (default {all_rows})")
    parser.add_argument(
        "--twin",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"also run rows (a) and ({TWIN_ROW}): (a) on a second taskhub server whose environment also has NAME=VALUE"
        " (repeatable), interleaved with (a); e.g. --twin GRANIAN_RUNTIME_MODE=st",
    )
    parser.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the rows, the lists and search at 10k and 1M tasks (bench/scale.py; the first run seeds "
        "1M tasks in the database taskhub_scale, minutes); --no-scale leaves them out (default: on)",
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.connections < 1 or args.threads < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--duration, --connections, --threads and --rounds must be positive, --warmup not negative")
    if args.connections < args.threads:
        parser.error("wrk needs at least one connection per thread")
    if unknown := set(args.rows) - {row.key for row in ROWS}:
        parser.error(f"unknown rows: {''.join(sorted(unknown))}")
    twin: dict[str, str] = {}
    for item in args.twin:
        name, equals, value = item.partition("=")  # the value is everything after the first "=", as given
        if not equals or not _VARIABLE_NAME.fullmatch(name):
            parser.error(f"--twin takes NAME=VALUE, NAME a variable's name, not {item!r}")
        if name in twin:
            parser.error(f"--twin sets {name} twice")
        if name in TWIN_REFUSED:
            parser.error(f"--twin cannot set {name}: the server's command line sets it")
        if name.startswith("GRANIAN_") and args.server != "granian":
            parser.error(f"--twin {name} means nothing to --server {args.server}")
        twin[name] = value
    args.twin = twin
    if twin:  # (A) is measured against (a), in its group
        args.rows += "".join(key for key in ("a", TWIN_ROW) if key not in args.rows)
    elif TWIN_ROW in args.rows:
        parser.error(f"row ({TWIN_ROW}) runs only with --twin NAME=VALUE: the setting it tries")
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- environment ----------------------------------------------------------------------------------------


def server_environment(args: argparse.Namespace) -> dict[str, str]:
    """The server's environment: the bench's own, with `bench_settings` over it."""
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_DEBUG"}
    env.update(bench_settings(args))
    return env


def bench_settings(args: argparse.Namespace) -> dict[str, str]:
    """What every server's environment has whatever the bench's: production settings, fresh secrets,
    real services, quiet logs."""
    return dict(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        JWT_SIGNING_KEY=secrets.token_urlsafe(50),
        METRICS_TOKEN=secrets.token_urlsafe(32),  # /health shows its `concerns` (check_variant) with it
        JWT_ACCESS_TOKEN_LIFETIME=str(TOKEN_LIFETIME),
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        CACHE_KEY_PREFIX="taskhub-bench",
        SECURE_SSL_REDIRECT="false",
        RATE_LIMITS_ENABLED="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )


# The servers of the rows that do not run on taskhub's default servers. taskhub's: what /health's
# `concerns` must say once each has started (a row never measures the wrong configuration); the peers'
# and the floors' are checked by their answers (check_row).
SERVER_VARIANTS: dict[str, dict[str, Any]] = {
    "bare": {"metrics": False, "tracing": False, "tracing_exporters": []},
    "observed": {"metrics": True, "tracing": True, "tracing_exporters": ["otlp"], "metrics_multiprocess": True},
    "sampled": {"metrics": True, "tracing": True, "tracing_exporters": ["otlp"], "metrics_multiprocess": True},
    "unsampled": {"metrics": True, "tracing": True, "tracing_exporters": ["otlp"], "metrics_multiprocess": True},
    "metrics": {"metrics": True, "tracing": False, "tracing_exporters": [], "metrics_multiprocess": True},
    "full": {"metrics": True, "tracing": False, "rate_limits": True, "metrics_multiprocess": True, "cache": True},
    "nocache": {"cache": False, "rate_limits": False},
    "two": {"cache": True, "rate_limits": False},
    "twin": {},  # whatever --twin sets; its answer must be (a)'s (check_row)
    "peer-rest": {},
    "peer-rest-full": {},
    "peer-graphql": {},
    "peer-floor": {},
    "peer-grpc": {},
    "grpc-floor-redis": {},
    "grpc-floor-constant": {},
}
# The full profile's limits: counted (one pipelined Redis round trip per request, RateLimit-* headers)
# but never reached by one user at thousands of requests a second.
FULL_PROFILE_RATE = "1000000000/m,1000000000/h"
# The profiles of the peer servers: "peer-rest-full" is the full profile, the others row (a)'s.
FULL_PROFILE_SERVERS = {"full", "peer-rest-full"}


def variant_environment(
    env: dict[str, str], variant: str, metrics_directory: Path, twin: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The default server's environment (same secrets, database, cache, settings) with the
    observability switches of `variant` instead of whatever the caller's environment says:

    - `bare`: METRICS_ENABLED=false and no OTEL_* variable (tracing off);
    - `observed`: METRICS_ENABLED=true in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, a fresh empty
      directory, as production runs it) and tracing to OTLP at an endpoint nothing listens on, so every
      request is sampled, batched and its export fails, as with a collector that is down;
    - `sampled`: as `observed`, with the head sampling docs/operations.md recommends for production
      (`parentbased_traceidratio`, RECOMMENDED_SAMPLING_RATIO of the traces that start here);
    - `unsampled`: as `sampled` with a ratio of 0: tracing on, every request dropped by the sampler,
      which is what each request pays for tracing whether or not it is sampled;
    - `metrics`: as `observed` without tracing (no OTEL_* variable): the cost of metrics alone;
    - `full` and `peer-rest-full`, the full profile: metrics in multiprocess mode, rate limits on
      (RATE_LIMIT_USER / RATE_LIMIT_ANON at FULL_PROFILE_RATE), the access line (LOG_LEVEL=INFO), no tracing;
    - `nocache`: the default environment with CACHE_ENABLED=false (every read from PostgreSQL);
    - `twin`: the default environment with `twin`'s variables (--twin) set over it;
    - every other (`two`, the peers, the floors): the default environment as it is, row (a)'s profile:
      metrics in-process, no rate limits, LOG_LEVEL=WARNING, no tracing set by the bench.

    The FastAPI and Strawberry peers (PEER_APPS) get it without the GRANIAN_* variables.
    """
    variables = {
        name: value
        for name, value in env.items()
        if not name.startswith("OTEL_") and name not in {"METRICS_ENABLED", "PROMETHEUS_MULTIPROC_DIR"}
    }
    if variant == "bare":
        variables["METRICS_ENABLED"] = "false"
    elif variant in {"observed", "sampled", "unsampled", "metrics"} | FULL_PROFILE_SERVERS:
        metrics_directory.mkdir(parents=True, exist_ok=False)  # must be empty when the server starts
        variables.update(METRICS_ENABLED="true", PROMETHEUS_MULTIPROC_DIR=str(metrics_directory))
        if variant in {"observed", "sampled", "unsampled"}:
            variables.update(
                OTEL_TRACES_EXPORTER="otlp",
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",  # closed: a dead collector
            )
        if variant in {"sampled", "unsampled"}:
            ratio = RECOMMENDED_SAMPLING_RATIO if variant == "sampled" else "0"
            variables.update(OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG=ratio)
        if variant in FULL_PROFILE_SERVERS:
            variables.update(
                RATE_LIMITS_ENABLED="true",
                RATE_LIMIT_USER=FULL_PROFILE_RATE,
                RATE_LIMIT_ANON=FULL_PROFILE_RATE,
                LOG_LEVEL="INFO",
            )
    else:
        variables = dict(env)
        if variant == "nocache":
            variables["CACHE_ENABLED"] = "false"
        elif variant == "twin":
            variables.update(twin or {})
    if variant in PEER_APPS:
        # The peers' granian takes its options from its command line (`variant_server`). It would
        # read the caller's GRANIAN_* variables too, which are meant for taskhub's WSGI server:
        # GRANIAN_BLOCKING_THREADS=2 makes an ASGI server refuse to start.
        variables = {name: value for name, value in variables.items() if not name.startswith("GRANIAN_")}
    return variables


def ensure_database(database_url: str) -> None:
    """Create the PostgreSQL database named in the URL if it does not exist."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        return  # SQLite or another engine: migrate creates what it needs
    name = parts.path.lstrip("/")
    maintenance = parts._replace(scheme="postgresql", path="/postgres").geturl()
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
                log(f"creating database {name}")
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL is not reachable at {maintenance}: {exc}") from exc


class PostgresSessions:
    """Counts the sessions (connections) PostgreSQL has opened to the bench database."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        self.name = parts.path.lstrip("/")
        self.url = parts._replace(scheme="postgresql", path="/postgres").geturl()
        self.enabled = parts.scheme in {"postgres", "postgresql", "pgsql"}

    def count(self) -> int | None:
        if not self.enabled:
            return None
        import psycopg

        time.sleep(1.0)  # backends report their statistics about once a second
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [self.name]).fetchone()
        except psycopg.Error:
            return None
        # The connection made here to the `postgres` database is not counted for the bench database.
        return int(row[0]) if row else None


def check_redis(redis_url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis is not reachable at {redis_url}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Fixture:
    token: str
    task_id: str


def prepare_data(env: dict[str, str]) -> Fixture:
    """Migrate, (re)create the bench user's 200 tasks through the service, and mint an access token.

    Runs Django in this process with the server's environment, so the token is signed with the
    server's key.
    """
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    from api_rest.auth import TokenObtainSerializer
    from core.auth import actor_from_user
    from tasks.models import IdempotencyRecord, Priority, Status, Task
    from tasks.services import task_create

    log("migrating")
    call_command("migrate", interactive=False, verbosity=0)

    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=BENCH_USERNAME)
    if created:  # the post_save signal has made it an editor, like every new user
        user.set_unusable_password()
        user.save(update_fields=["password"])
    # Start from the same 200 tasks every run (earlier runs' POST rows added thousands).
    Task.objects.filter(owner=user).delete()
    IdempotencyRecord.objects.filter(user=user).delete()

    log(f"creating {TASK_COUNT} tasks through tasks.services.task_create")
    actor = actor_from_user(user)
    now = datetime.now(UTC)
    priorities = [p.label for p in Priority]
    statuses = list(Status.values)
    first_id = ""
    for n in range(TASK_COUNT):
        data: dict[str, Any] = {
            "title": f"Benchmark task {n:03d}",
            "description": f"Task {n} of the HTTP benchmark. " * (1 + n % 4),
            "priority": priorities[n % 3],
            "status": statuses[n % 3],
            "tags": [f"tag{n % 7}", "bench"] + (["weekly"] if n % 5 == 0 else []),
        }
        if n % 2 == 0:
            data["due_date"] = now + timedelta(days=n % 30 + 1)
        task = task_create(actor=actor, data=data)
        first_id = first_id or str(task.pk)

    token = str(TokenObtainSerializer.get_token(user).access_token)
    connections.close_all()
    return Fixture(token=token, task_id=first_id)


FLOOR_METHOD = "floor.Floor/Get"  # bench/grpc_floor.py's server
FLOOR_REQUEST, FLOOR_REPLY = b"\n\x01a", b"\n\x03abc"


def grpc_message(row: Row, task_id: str) -> bytes:
    """The serialized request of a gRPC row (the same on every call)."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from api_grpc.generated.tasks.v1 import tasks_pb2 as pb

    if row.grpc_method == FLOOR_METHOD:
        return FLOOR_REQUEST
    if row.grpc_method.endswith("/GetTask"):
        return pb.GetTaskRequest(id=task_id).SerializeToString()
    if row.grpc_method.endswith("/ListTasks"):
        return pb.ListTasksRequest(page_size=LIST_LIMIT).SerializeToString()
    due = Timestamp()
    due.FromJsonString(CREATE_INPUT["dueDate"])
    return pb.CreateTaskRequest(
        title=CREATE_INPUT["title"],
        description="Created by h2load through the gRPC CreateTask.",
        priority=pb.PRIORITY_HIGH,
        status=pb.STATUS_IN_PROGRESS,
        tags=CREATE_INPUT["tags"],
        due_date=due,
    ).SerializeToString()


def check_grpc_rows(port: int, fixture: Fixture) -> dict[str, int]:
    """Call each gRPC row once through a real channel (h2load cannot see gRPC status, which travels
    in trailers); return the protobuf and JSON sizes of the fixture's task."""
    import grpc

    from api_grpc.generated.tasks.v1 import tasks_pb2 as pb

    metadata = (("authorization", f"Bearer {fixture.token}"),)
    responses = {"GetTask": pb.GetTaskResponse, "ListTasks": pb.ListTasksResponse, "CreateTask": pb.CreateTaskResponse}
    sizes: dict[str, int] = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        for row in GRPC_ROWS:
            name = row.grpc_method.rsplit("/", 1)[1]
            call = channel.unary_unary(
                "/" + row.grpc_method,
                request_serializer=lambda message: message,
                response_deserializer=responses[name].FromString,
            )
            try:
                reply = call(grpc_message(row, fixture.task_id), metadata=metadata, timeout=10)
            except grpc.RpcError as error:
                raise BenchError(f"({row.key}) check failed: {error.code().name} {error.details()}") from None
            if name == "GetTask":
                sizes["protobuf"] = reply.task.ByteSize()
            if name == "ListTasks" and len(reply.tasks) != LIST_LIMIT:
                raise BenchError(f"({row.key}) check failed: {len(reply.tasks)} tasks")
    return sizes


def task_is_cached(task_id: str) -> bool:
    """True when the task's row is in the cache (so row (a) measures cache hits)."""
    from uuid import UUID

    from core.cache import safe_cache
    from tasks.cache import task_key

    return safe_cache.get(task_key(UUID(task_id))) is not None


# -- server -----------------------------------------------------------------------------------------


def _venv_program(name: str) -> str:
    path = VENV_BIN / name
    return str(path if path.exists() else shutil.which(name) or name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVERS = ("granian", "uvicorn")
# `{threads}`: `blocking_threads`, as `Server` passes it to granian.
SERVER_NAMES = {
    "granian": "granian WSGI, 1 worker x {threads} threads",
    "uvicorn": "gunicorn + 1 uvicorn worker (ASGI)",
}


def blocking_threads(env: Mapping[str, str]) -> str:
    """The WSGI server's `--blocking-threads`: GRANIAN_BLOCKING_THREADS, 4 as production runs it."""
    return env.get("GRANIAN_BLOCKING_THREADS", "4")


class Server:
    """A server pinned to `cpu`, in its own process group: taskhub's HTTP server the production way (one
    worker unless told), its grpcserver, or a peer's or a floor's server.

    granian: WSGI on a fixed pool of blocking threads (the production default, docs/operations.md).
    uvicorn: gunicorn + one uvicorn worker running the ASGI application (kept for comparison).
    """

    def __init__(
        self,
        kind: str,
        env: dict[str, str],
        port: int,
        cpu: str,
        log_path: Path,
        *,
        program: list[str] | None = None,
        workers: int = 1,
        cwd: Path = ROOT,
    ) -> None:
        """`kind` "granian" / "uvicorn": taskhub's HTTP server; "grpc": taskhub's grpcserver, or with
        `program` another gRPC server (ready once its port accepts, CPU of its own process); "asgi": the
        `program` of a peer's HTTP server (ready once /healthz answers, CPU of its workers)."""
        if program is not None:
            pass
        elif kind == "granian":
            program = [
                _venv_program("granian"),
                "--interface", "wsgi",
                "--workers", str(workers),
                "--blocking-threads", blocking_threads(env),
                "--host", "127.0.0.1",
                "--port", str(port),
                "config.wsgi:application",
            ]  # fmt: skip
        elif kind == "grpc":
            program = [sys.executable, "manage.py", "grpcserver", "--host", "127.0.0.1", "--port", str(port)]
        else:
            program = [
                _venv_program("gunicorn"),
                "config.asgi:application",
                "-k", "uvicorn_worker.UvicornWorker",
                "-w", "1",
                "--bind", f"127.0.0.1:{port}",
                "--no-control-socket",  # gunicorn 27's default socket path is shared by every gunicorn of the user
            ]  # fmt: skip
        self.kind = kind
        self.command = ["taskset", "-c", cpu, *program]
        self.env = env
        self.cwd = cwd
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        shown = [part if len(part) < 200 else f"<{len(part)} characters>" for part in self.command]
        log(f"starting: {' '.join(shown)}")
        number = 1
        while self.log_path.exists():  # a server of the same name started again: a log of its own
            number += 1
            self.log_path = self.log_path.with_name(f"{self.log_path.stem.split('.')[0]}.{number}.log")
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the server exited with status {self.process.returncode}; see {self.log_path}")
            try:
                if self.kind == "grpc":
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        raise BenchError(f"the server did not answer /healthz within {timeout:.0f} s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the gunicorn or granian main process; grpcserver itself)."""
        if self.process is None:
            return []
        if self.kind == "grpc":
            return [self.process.pid]
        pids: list[int] = []
        for children in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in children.read_text().split()]
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU time of the workers so far (every thread, including those that ended)."""
        return sum(self.cpu_times())

    def cpu_times(self) -> tuple[float, float]:
        """User and system (kernel) CPU time of the workers so far, apart."""
        user = system = 0
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                user += int(fields[11])  # utime
                system += int(fields[12])  # stime
        ticks = os.sysconf("SC_CLK_TCK")
        return user / ticks, system / ticks

    def stop(self) -> None:
        """SIGTERM to the main process (graceful), then SIGKILL to its process group if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        log("stopping the server")
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log("the server did not stop in 15 s; killing its process group")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        # A worker that outlived its master would still be in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def http(url: str, token: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500]


def graphql_data(server: Server, fixture: Fixture, key: str) -> dict[str, Any]:
    """Row `key`'s GraphQL request sent once by hand; its `data`, checked to be free of errors.

    Like wrk/check.lua, any body that contains "errors" fails, whatever the status (GraphQL reports
    errors with HTTP 200).
    """
    row = next(row for row in ROWS if row.key == key)
    request_body = row.body(fixture.task_id).encode()
    status, body = http(server.base_url + row.path, fixture.token, "POST", request_body)
    text = body.decode(errors="replace") if isinstance(body, bytes) else json.dumps(body)
    if status != 200 or '"errors"' in text or not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise BenchError(f"({key}) POST {row.path} {request_body.decode()[:200]} answered {status}: {text[:300]}")
    return body["data"]


def _has_task_fields(task: Any) -> bool:
    return isinstance(task, dict) and set(task) == set(TASK_FIELDS.split())


def check_rows(server: Server, fixture: Fixture) -> None:
    """One request per row by hand, so a row that answers wrongly fails before wrk hides it in a count."""
    base, token, task_id = server.base_url, fixture.token, fixture.task_id
    for path in (f"/api/v1/tasks/{task_id}", f"/bench/baseline/tasks/{task_id}"):
        status, body = http(base + path, token)
        if status != 200 or not isinstance(body, dict) or body.get("id") != task_id:
            raise BenchError(f"GET {path} answered {status}: {body!r}")
    status, body = http(f"{base}/api/v1/tasks?limit={LIST_LIMIT}", token)
    if status != 200 or len(body.get("results", [])) != LIST_LIMIT:
        raise BenchError(f"GET /api/v1/tasks?limit={LIST_LIMIT} answered {status}: {str(body)[:300]}")
    task = graphql_data(server, fixture, "e")["task"]
    if not _has_task_fields(task) or task["id"] != task_id:
        raise BenchError(f"(e) task(id) answered {str(task)[:300]}")
    connection = graphql_data(server, fixture, "f")["tasks"]
    edges = connection["edges"]
    if len(edges) != LIST_LIMIT or not all(_has_task_fields(edge["node"]) for edge in edges):
        raise BenchError(f"(f) tasks(first: {LIST_LIMIT}) answered {len(edges)} edges: {str(connection)[:300]}")
    status, body = http(f"{base}/api/v1/tasks", token, "POST", b'{"title": "Benchmark check", "tags": ["bench"]}')
    if status != 201:
        raise BenchError(f"POST /api/v1/tasks answered {status}: {body!r}")
    created = graphql_data(server, fixture, "g")["createTask"]
    if not _has_task_fields(created) or created["title"] != CREATE_INPUT["title"]:
        raise BenchError(f"(g) createTask answered {str(created)[:300]}")
    # The creates above orphaned the cached list pages: read the page once more to cache it again
    # ((b) and (f) read the same page: same scope, ordering and limit).
    http(f"{base}/api/v1/tasks?limit={LIST_LIMIT}", token)
    if not task_is_cached(task_id):
        raise BenchError("the task of rows (a) and (e) is not in the cache after reading it")


def check_variant(server: Server, fixture: Fixture, variant: str) -> None:
    """The server of a cost row (k) to (o) answers the row's request, and runs with the switches it should
    (its /health `concerns`), so a row never measures the wrong configuration."""
    status, body = http(f"{server.base_url}/api/v1/tasks/{fixture.task_id}", fixture.token)
    if status != 200 or not isinstance(body, dict) or body.get("id") != fixture.task_id:
        raise BenchError(f"({variant} server) GET /api/v1/tasks/{fixture.task_id} answered {status}: {body!r}")
    status, body = http(f"{server.base_url}/health", server.env["METRICS_TOKEN"])
    concerns = body.get("concerns", {}) if isinstance(body, dict) else {}
    wanted = SERVER_VARIANTS[variant]
    if status != 200 or {name: concerns.get(name) for name in wanted} != wanted:
        raise BenchError(f"({variant} server) /health answered {status}: {body!r}; wanted concerns {wanted}")


# -- the peers -------------------------------------------------------------------------------------------

PEERS_DIR = BENCH_DIR / "peers"
PEER_VENV = PEERS_DIR / ".venv"
PEER_APPS = {  # granian ASGI targets in bench/peers/
    "peer-rest": "rest_peer:app",
    "peer-rest-full": "rest_peer:app",
    "peer-graphql": "graphql_peer:app",
    "peer-floor": "floor_peer:app",
}
GRPC_PEER = PEERS_DIR / "grpc_peer.py"  # written by another hand; its rows skip while it is missing


class RowUnavailable(Exception):
    """A row's server cannot run: `skipped` (a peer that is not there) or failed (it broke)."""

    def __init__(self, message: str, *, skipped: bool = False) -> None:
        super().__init__(message)
        self.skipped = skipped


def ensure_peer_venv() -> Path:
    """bench/peers/.venv with bench/peers/requirements.txt installed; built on first use and rebuilt
    whenever the requirements change (the sha256 of the file is stamped in the venv). Returns its bin/."""
    requirements = PEERS_DIR / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = PEER_VENV / "requirements.sha256"
    bin_dir = PEER_VENV / "bin"
    if (bin_dir / "granian").exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return bin_dir
    log(f"building {PEER_VENV.relative_to(ROOT)} from {requirements.relative_to(ROOT)} (once; needs PyPI)")
    base_python = getattr(sys, "_base_executable", "") or sys.executable
    for command in (
        [base_python, "-m", "venv", "--clear", str(PEER_VENV)],
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ],
    ):
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RowUnavailable(f"building the peers' venv failed: {' '.join(command)}: {completed.stderr[-500:]}")
    stamp.write_text(digest + "\n")
    return bin_dir


def reset_peer_cache(redis_url: str, prefix: str) -> None:
    """Drop the peers' cache entries (`<prefix>:peer:*`) of earlier runs: the bench recreates its tasks
    through taskhub's services, whose writes the peers do not see (their caches would otherwise keep
    the pages of the last run's tasks)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:peer:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def grpc_floor_server() -> str:
    """The server script of bench/grpc_floor.py (its SERVER), run with argv: redis url, port, 1|0."""
    try:
        from bench import grpc_floor
    except ImportError as error:
        raise RowUnavailable(f"bench/grpc_floor.py cannot be imported: {error}", skipped=True) from None
    script = getattr(grpc_floor, "SERVER", None)
    if not isinstance(script, str):
        raise RowUnavailable("bench/grpc_floor.py has no SERVER script to start", skipped=True)
    return script


def variant_server(args: argparse.Namespace, variant: str, env: dict[str, str], scratch: Path, out_dir: Path) -> Server:
    """The (not yet started) server of `variant`, in the environment of variant_environment."""
    variant_env = variant_environment(env, variant, scratch / f"{variant}-prometheus", args.twin)
    log_path = out_dir / f"server-{variant}.log"
    port = free_port()
    if variant in PEER_APPS:
        bin_dir = ensure_peer_venv()
        program = [
            str(bin_dir / "granian"),
            "--interface", "asgi",
            "--loop", "uvloop",
            "--workers", "1",
            "--host", "127.0.0.1",
            "--port", str(port),
            PEER_APPS[variant],
        ]  # fmt: skip
        return Server("asgi", variant_env, port, args.server_cpu, log_path, program=program, cwd=PEERS_DIR)
    if variant == "peer-grpc":
        if not GRPC_PEER.exists():
            raise RowUnavailable(f"{GRPC_PEER.relative_to(ROOT)} is not there (yet)", skipped=True)
        program = [sys.executable, str(GRPC_PEER), "--port", str(port)]
        return Server("grpc", variant_env, port, args.server_cpu, log_path, program=program)
    if variant.startswith("grpc-floor-"):
        with_redis = "1" if variant == "grpc-floor-redis" else "0"
        program = [sys.executable, "-c", grpc_floor_server(), args.redis_url, str(port), with_redis]
        return Server("grpc", variant_env, port, args.server_cpu, log_path, program=program)
    workers = 2 if variant == "two" else 1
    return Server(args.server, variant_env, port, args.server_cpu, log_path, workers=workers)


# -- checks of the peer rows and taskhub's twins of row (a) ------------------------------------------------


@dataclass(slots=True)
class References:
    """What taskhub's default servers answer for the rows' requests: the bodies each twin and peer must equal."""

    task: Any = None  # (a)'s JSON
    etag: str = ""
    page: Any = None  # (b)'s JSON
    base_url: str = ""  # where (b)'s `next` link points
    graphql_task: Any = None  # (e)'s data
    graphql_page: Any = None  # (f)'s data
    grpc_task: bytes = b""  # (h)'s GetTaskResponse


def http_response(
    url: str, token: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()[:500]


def grpc_call(port: int, method: str, message: bytes, token: str) -> bytes:
    """One unary call through a real channel; the reply's bytes. Raises RowUnavailable on a gRPC error."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/" + method, request_serializer=lambda m: m, response_deserializer=lambda m: m)
        try:
            return bytes(call(message, metadata=(("authorization", f"Bearer {token}"),), timeout=10))
        except grpc.RpcError as error:
            raise RowUnavailable(f"{method} answered {error.code().name}: {error.details()}") from None


def take_references(server: Server, grpc_port: int, fixture: Fixture) -> References:
    refs = References(base_url=server.base_url)
    _, headers, body = http_response(f"{server.base_url}/api/v1/tasks/{fixture.task_id}", fixture.token)
    refs.task, refs.etag = json.loads(body), headers.get("etag", "")
    _, _, body = http_response(f"{server.base_url}/api/v1/tasks?limit={LIST_LIMIT}", fixture.token)
    refs.page = json.loads(body)
    refs.graphql_task = graphql_data(server, fixture, "e")
    refs.graphql_page = graphql_data(server, fixture, "f")
    get_task = next(row for row in GRPC_ROWS if row.grpc_method.endswith("/GetTask"))
    refs.grpc_task = grpc_call(grpc_port, get_task.grpc_method, grpc_message(get_task, fixture.task_id), fixture.token)
    return refs


def _access_line_logged(log_path: Path, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "taskhub.access" in log_path.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


def check_row(row: Row, server: Server, fixture: Fixture, refs: References) -> None:
    """Row `row`'s request sent once by hand to its own server: 200 (or OK) and the body taskhub's default
    server answers, so no row is timed answering something else. Raises RowUnavailable."""
    url = server.base_url + row.path.format(task_id=fixture.task_id)
    if row.grpc_method:
        reply = grpc_call(server.port, row.grpc_method, grpc_message(row, fixture.task_id), fixture.token)
        wanted = FLOOR_REPLY if row.grpc_method == FLOOR_METHOD else refs.grpc_task
        if reply != wanted:
            from api_grpc.generated.tasks.v1 import tasks_pb2 as pb

            shown = reply if row.grpc_method == FLOOR_METHOD else pb.GetTaskResponse.FromString(reply)
            raise RowUnavailable(f"({row.key}) {row.grpc_method} answered {str(shown)[:300]!r}, not taskhub's reply")
        return
    if row.query:
        status, _, body = http_response(url, fixture.token, "POST", row.body(fixture.task_id).encode())
        data = json.loads(body) if status == 200 else None
        wanted = refs.graphql_task if row.query == TASK_QUERY.query else refs.graphql_page
        if not isinstance(data, dict) or "errors" in data or data.get("data") != wanted:
            raise RowUnavailable(f"({row.key}) POST {row.path} answered {status}: {body[:300]!r}, not taskhub's data")
        return
    status, headers, body = http_response(url, fixture.token)
    if status != 200:
        raise RowUnavailable(f"({row.key}) GET {row.path} answered {status}: {body[:300]!r}")
    if row.path == "/floor":
        return
    answer = json.loads(body)
    if "limit=" in row.path:
        if isinstance(answer, dict) and isinstance(answer.get("next"), str):
            answer["next"] = answer["next"].replace(server.base_url, refs.base_url, 1)
        if answer != refs.page:
            raise RowUnavailable(f"({row.key}) GET {row.path} answered a page unlike taskhub's: {body[:300]!r}")
        return
    if answer != refs.task or headers.get("etag") != refs.etag:
        raise RowUnavailable(f"({row.key}) GET {row.path} answered {body[:300]!r} (ETag {headers.get('etag')})")
    if row.server in FULL_PROFILE_SERVERS:
        if "ratelimit-limit" not in headers:
            raise RowUnavailable(f"({row.key}) the full profile's answer has no RateLimit-Limit header")
        if not _access_line_logged(server.log_path):
            raise RowUnavailable(f"({row.key}) the full profile's server wrote no access line to {server.log_path}")
    if row.server == "two" and len(server.worker_pids()) != 2:
        raise RowUnavailable(f"({row.key}) the server runs {len(server.worker_pids())} workers, not 2")


# -- h2load (gRPC) -------------------------------------------------------------------------------------


def run_grpc_row(
    args: argparse.Namespace,
    row: Row,
    server: Server,
    fixture: Fixture,
    out_dir: Path,
    seconds: int | None = None,
    warmup: int | None = None,
    name: str = "",
) -> Result:
    """h2load with as many concurrent calls as wrk's connections, for `seconds` (default --duration)
    after `warmup` (default --warmup); CPU of the server process."""
    from bench.grpc_load import run_h2load

    seconds = seconds or args.duration
    warmup = args.warmup if warmup is None else warmup
    slug = name or f"{row.key}-" + re.sub(r"[^a-z0-9]+", "-", row.label.lower()).strip("-")[:40]
    log(f"({row.key}) {row.label}: {seconds} s (+{warmup} s warm-up)")
    cpu_before = server.cpu_times()
    try:
        measured = run_h2load(
            cpu=args.load_cpu,
            port=server.port,
            method=row.grpc_method,
            message=grpc_message(row, fixture.task_id),
            token=fixture.token,
            seconds=seconds,
            warmup=warmup,
            clients=args.connections,
            streams=1,
            out_path=out_dir / f"{slug}.txt",
        )
    except RuntimeError as error:
        return Result(row=row, failure=str(error)[:300])
    cpu_after = server.cpu_times()
    result = Result(row=row, requests=measured.requests, seconds=measured.requests / measured.rps)
    result.p50_ms, result.p99_ms, result.percentiles = measured.p50_ms, measured.p99_ms, measured.percentiles
    # h2load's log also holds the warm-up's calls; CPU is spread over all of them.
    _set_cpu(result, cpu_before, cpu_after)
    if measured.failed:
        result.failure = f"{measured.failed} calls failed at the HTTP/2 level"
    return result


def _set_cpu(result: Result, before: tuple[float, float], after: tuple[float, float]) -> None:
    """The server's CPU per request of `result` (ms), and its system part, from two `cpu_times()`."""
    if result.requests:
        user, system = ((end - start) * 1000 for start, end in zip(before, after, strict=True))
        result.cpu_ms = (user + system) / result.requests
        result.cpu_system_ms = system / result.requests


# -- wrk ---------------------------------------------------------------------------------------------


def run_wrk(
    args: argparse.Namespace, row: Row, url: str, fixture: Fixture, seconds: int, out_path: Path | None
) -> Result:
    command = [
        "taskset", "-c", args.load_cpu,
        shutil.which("wrk") or "wrk",
        "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s",
        "--timeout", "5s", "--latency",
        "-s", str(LUA_DIR / row.script),
        url,
    ]  # fmt: skip
    env = {
        **os.environ,
        "BENCH_TOKEN": fixture.token,
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_BODY": row.body(fixture.task_id),
    }
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    output = completed.stdout + (f"\n[stderr]\n{completed.stderr}" if completed.stderr.strip() else "")
    if out_path is not None:
        out_path.write_text(f"$ {' '.join(command)}\n\n{output}")
    result = Result(row)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH requests=")), None)
    if line is None:
        result.failure = f"wrk failed (status {completed.returncode}): {output.strip()[-300:]}"
        return result
    values = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}
    result.requests = values["requests"]
    result.seconds = values["duration_us"] / 1e6
    result.p50_ms = values["p50_us"] / 1000
    result.p99_ms = values["p99_us"] / 1000
    if tail := re.search(r"^BENCH percentiles=(\S+)$", completed.stdout, re.MULTILINE):
        points = (point.split(":") for point in tail.group(1).split(","))
        result.percentiles = {float(percentile): int(us) / 1000 for percentile, us in points}
    result.non2xx = values["non2xx"]
    result.graphql_errors = values["gqlerrors"]
    result.socket_errors = {name: values[name] for name in ("connect", "read", "write", "timeout") if values[name]}
    if result.non2xx or result.graphql_errors or completed.returncode != 0:
        sample = re.search(r"^BENCH first_bad=(.*)$", completed.stdout, re.MULTILINE)
        result.failure = f"{result.non2xx} non-2xx responses"
        if row.query:
            result.failure += f', {result.graphql_errors} 2xx responses with "errors"'
        if completed.returncode != 0 and not (result.non2xx or result.graphql_errors):
            result.failure = f"wrk exited with status {completed.returncode}"
        result.failure += f", first: {sample.group(1)[:200]}" if sample else ""
    return result


def run_http_row(
    args: argparse.Namespace,
    row: Row,
    server: Server,
    fixture: Fixture,
    out_dir: Path,
    pg_sessions: PostgresSessions,
    seconds: int | None = None,
    name: str = "",
) -> Result:
    """Warm-up (when `seconds` is not given), then wrk for `seconds` (default --duration), with the
    server's CPU time and new PostgreSQL sessions per request."""
    url = server.base_url + row.path.format(task_id=fixture.task_id)
    slug = name or f"{row.key}-" + re.sub(r"[^a-z0-9]+", "-", row.label.lower()).strip("-")[:40]
    if seconds is None and args.warmup:
        log(f"({row.key}) warm-up {args.warmup} s")
        run_wrk(args, row, url, fixture, args.warmup, out_dir / f"{slug}.warmup.txt")
    seconds = seconds or args.duration
    log(f"({row.key}) {row.label}: {seconds} s")
    sessions_before = pg_sessions.count()
    cpu_before = server.cpu_times()
    result = run_wrk(args, row, url, fixture, seconds, out_dir / f"{slug}.txt")
    cpu_after = server.cpu_times()
    sessions_after = pg_sessions.count()
    _set_cpu(result, cpu_before, cpu_after)
    if result.requests and sessions_before is not None and sessions_after is not None:
        result.pg_connections = (sessions_after - sessions_before) / result.requests
    return result


def measure(
    args: argparse.Namespace,
    row: Row,
    server: Server,
    fixture: Fixture,
    out_dir: Path,
    pg_sessions: PostgresSessions,
    seconds: int | None = None,
    name: str = "",
) -> Result:
    """One measured run of `row` (wrk, or h2load for a gRPC row), with a warm-up unless `seconds` is given."""
    if row.grpc_method:
        warmup = None if seconds is None else 0
        return run_grpc_row(args, row, server, fixture, out_dir, seconds, warmup, name)
    return run_http_row(args, row, server, fixture, out_dir, pg_sessions, seconds, name)


def warm_up(args: argparse.Namespace, row: Row, server: Server, fixture: Fixture, out_dir: Path) -> None:
    if not args.warmup:
        return
    log(f"({row.key}) warm-up {args.warmup} s")
    if row.grpc_method:
        from bench.grpc_load import run_h2load

        with contextlib.suppress(RuntimeError):  # a failing row fails in its measured runs
            run_h2load(
                cpu=args.load_cpu, port=server.port, method=row.grpc_method,
                message=grpc_message(row, fixture.task_id), token=fixture.token, seconds=args.warmup, warmup=0,
                clients=args.connections, streams=1, out_path=out_dir / f"{row.key}.warmup.txt",
            )  # fmt: skip
        return
    url = server.base_url + row.path.format(task_id=fixture.task_id)
    run_wrk(args, row, url, fixture, args.warmup, out_dir / f"{row.key}.warmup.txt")


def pooled_percentile(parts: list[Result], percentile: float) -> float:
    """The `percentile` latency (ms) of all the requests of `parts`, slices of one row, from each slice's
    request count and tail (`Result.percentiles`): the lowest latency of any tail at or below which
    at least that share of all the requests lie.

    A slice vouches only for the share its recorded percentiles show (its 99.2 at 14 ms: 99.2% of its
    requests at or below 14 ms, none more), so the answer is never below the true percentile of the
    pooled requests. It is above it by less than a tenth of a percent of the requests while every
    slice's 90th percentile lies below the answer, as it does for slices of one row (a slice whose
    90th does not is counted only from there). Percentiles of slices do not average: the highest
    slice p99 is the p99 of that slice's couple of seconds, not of the row.
    """
    total = sum(part.requests for part in parts)
    candidates = sorted({ms for part in parts for ms in part.percentiles.values()})
    for latency in candidates:
        below = sum(
            part.requests * max((p for p, ms in part.percentiles.items() if ms <= latency), default=0.0) / 100
            for part in parts
        )
        if below >= percentile / 100 * total:
            return latency
    return candidates[-1]


def run_interleaved(
    args: argparse.Namespace,
    rows: list[Row],
    servers: dict[str, Server],
    fixture: Fixture,
    out_dir: Path,
    pg_sessions: PostgresSessions,
) -> list[Result]:
    """A group of comparable rows, each on its server (`servers`, by row key, all up), measured in
    `--rounds` rounds of duration/rounds seconds (at least 1 s), the order rotated every round so each
    row runs first, second, … equally often.

    The machine is shared and its speed drifts over a minute: back-to-back rows of 10 s put the cost of
    metrics alone anywhere from -1% to 19% within a quarter of an hour. Slices spread the drift over
    every row alike. A row's req/s and CPU per request sum its slices; its p50 is the median of the
    slices' p50, and its p99 that of all its requests, pooled from each slice's tail
    (`pooled_percentile`); the highest p99 of one slice is kept beside it, and each round's req/s
    (`round_ratios`).
    """
    for row in rows:
        warm_up(args, row, servers[row.key], fixture, out_dir)
    rounds = max(1, min(args.rounds, args.duration))
    seconds = max(1, round(args.duration / rounds))
    slices: dict[str, list[Result]] = {row.key: [] for row in rows}
    for number in range(rounds):
        shift = number % len(rows)
        for row in rows[shift:] + rows[:shift]:
            name = f"{row.key}-round{number + 1}"
            slices[row.key].append(measure(args, row, servers[row.key], fixture, out_dir, pg_sessions, seconds, name))
    results = []
    for row in rows:
        parts = slices[row.key]
        merged = Result(row)
        merged.requests = sum(part.requests for part in parts)
        merged.seconds = sum(part.seconds for part in parts)
        merged.p50_ms = statistics.median(part.p50_ms for part in parts)
        merged.slice_p99_ms = max(part.p99_ms for part in parts)
        merged.round_rps = [part.rps for part in parts]
        merged.group = tuple(r.key for r in rows)
        if all(part.percentiles for part in parts):
            merged.p99_ms = pooled_percentile(parts, 99.0)
        else:  # a slice that failed has no tail to pool
            merged.p99_ms = merged.slice_p99_ms
        merged.non2xx = sum(part.non2xx for part in parts)
        merged.graphql_errors = sum(part.graphql_errors for part in parts)
        cpu = [part.cpu_ms * part.requests for part in parts if part.cpu_ms is not None]
        if len(cpu) == len(parts) and merged.requests:
            merged.cpu_ms = sum(cpu) / merged.requests
        system = [part.cpu_system_ms * part.requests for part in parts if part.cpu_system_ms is not None]
        if len(system) == len(parts) and merged.requests:
            merged.cpu_system_ms = sum(system) / merged.requests
        sessions = [part.pg_connections * part.requests for part in parts if part.pg_connections is not None]
        if len(sessions) == len(parts) and merged.requests:
            merged.pg_connections = sum(sessions) / merged.requests
        merged.failure = "; ".join(part.failure for part in parts if part.failure)
        results.append(merged)
    return results


# -- report ----------------------------------------------------------------------------------------


def render_table(results: list[Result], markdown: bool, connections: int = 32) -> str:
    by_key = {result.row.key: result for result in results}
    baseline = by_key.get("d")
    base_rps = baseline.rps if baseline and not baseline.failure else 0.0
    header = ["row", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "PG conn/req", "vs (d)"]
    lines: list[list[str]] = []
    for row in ROWS:
        result = by_key.get(row.key)
        if result is None:
            continue
        name = f"({row.key}) {row.label}"
        if result.failure or result.skipped:
            lines.append([name, "FAILED" if result.failure else "SKIPPED", "-", "-", "-", "-", "-"])
            continue
        if result.socket_errors:
            name += " [socket errors: " + ", ".join(f"{k} {v}" for k, v in result.socket_errors.items()) + "]"
        ratio = f"{result.rps / base_rps:.2f}x" if base_rps else "-"
        cpu = f"{result.cpu_ms:.2f}" if result.cpu_ms is not None else "-"
        conns = f"{result.pg_connections:.2f}" if result.pg_connections is not None else "-"
        lines.append([name, f"{result.rps:,.0f}", f"{result.p50_ms:.2f}", f"{result.p99_ms:.2f}", cpu, conns, ratio])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|---:|---:|"]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
    else:
        widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]

        def fmt(cells: list[str]) -> str:
            padded = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return "  ".join(padded)

        out = [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(cells) for cells in lines]
    ratios = [
        line
        for line in (
            _ratio_line(by_key, "a", "d", 3),  # full stack over the plain DRF view
            _ratio_line(by_key, "h", "a", 2),  # gRPC over REST
            _ratio_line(by_key, "e", "a", 0.5),  # GraphQL over REST
            _cost_line(by_key, "m", "k", OBSERVABILITY_COST_TARGET),  # metrics + tracing, sampled, over neither
            _cost_line(by_key, "l", "k", None),  # the same, every request traced
            _cost_line(by_key, "o", "k", None),  # the same, no request traced: the part every request pays
            _cost_line(by_key, "a", "k", None),  # metrics alone (the default) over neither
            _cost_line(by_key, "n", "k", None),  # metrics alone, multiprocess mode, over neither
        )
        if line
    ]
    if ratios:
        out += ["", *ratios]
    peers = render_peers(by_key, markdown, connections)
    if peers:
        out += ["", *peers]
    for result in results:
        if result.failure:
            out.append(f"({result.row.key}) FAILED: {result.failure}")
        elif result.skipped:
            out.append(f"({result.row.key}) SKIPPED: {result.skipped}")
    return "\n".join(out)


# taskhub's rows next to their peers, floors and twins: (taskhub's row, the other row, what is compared,
# the target for taskhub's req/s over the other's, or None). The targets are issue 14's.
COMPARISONS: tuple[tuple[str, str, str, float | None], ...] = (
    ("a", "q", "REST GET one task (cache hit) / FastAPI peer", 1.0),
    ("p", "r", "REST GET one task, full profile / FastAPI peer, full profile", 1.0),
    ("b", "s", f"REST list of {LIST_LIMIT} / FastAPI peer's list", 1.0),
    ("e", "t", "GraphQL task(id) / Strawberry peer", 1.0),
    ("f", "u", f"GraphQL tasks(first: {LIST_LIMIT}) / Strawberry peer", None),
    ("f", "b", f"GraphQL tasks(first: {LIST_LIMIT}) / REST list of {LIST_LIMIT}", 0.5),
    ("h", "v", "gRPC GetTask / grpcio peer", 1.0),
    ("h", "w", "gRPC GetTask / grpcio floor, one Redis GET", 0.85),
    ("h", "x", "gRPC GetTask / grpcio floor, constant reply", None),
    ("a", "z", "GET one task: cache hit / cache miss", 5.0),
    ("W", "a", "GET one task: 2 granian workers / 1", None),
    ("A", "a", "GET one task: the --twin server / the default server", None),
    ("a", "y", "REST GET one task / bare FastAPI floor", None),
    ("q", "y", "FastAPI peer GET one task / bare FastAPI floor", None),
)
# Cached reads: the rows the p99 target covers, at --connections 32.
CACHED_READS = ("a", "b", "e", "f", "h", "i", "p", "W")
P99_TARGET_MS = 25.0
P99_TARGET_CONNECTIONS = 32


def render_peers(by_key: dict[str, Result], markdown: bool, connections: int) -> list[str]:
    """The comparisons of COMPARISONS whose rows ran: req/s of both rows, the ratio by req/s and by
    server CPU per request (the other row's CPU per request over this one's: above 1, taskhub needs less),
    and the verdict on the target; then the p99 target over the cached reads."""
    header = ["comparison", "rows", "req/s", "other req/s", "ratio", "by CPU/req", "per round", "target", "verdict"]
    lines: list[list[str]] = []
    for key, other, label, target in COMPARISONS:
        result, reference = by_key.get(key), by_key.get(other)
        if not result or not reference:
            continue
        cells = [label, f"({key}) / ({other})"]
        if result.failure or reference.failure or result.skipped or reference.skipped or not reference.rps:
            # A row that failed may still have counted requests (non-2xx answers, one failed slice).
            why = next(
                (
                    f"({r.row.key}) {'FAILED' if r.failure else 'SKIPPED'}"
                    for r in (result, reference)
                    if r.failure or r.skipped
                ),
                f"({other}) made no request",
            )
            lines.append([*cells, "-", "-", "-", "-", "-", f">= {target:g}x" if target else "-", why])
            continue
        ratio = result.rps / reference.rps
        by_cpu = f"{reference.cpu_ms / result.cpu_ms:.2f}x" if result.cpu_ms and reference.cpu_ms else "-"
        if target is None:
            verdict = "-"
        elif ratio >= target:
            verdict = "meets"
        else:
            verdict = f"misses by {1 - ratio / target:.0%}"
        lines.append(
            [*cells, f"{result.rps:,.0f}", f"{reference.rps:,.0f}", f"{ratio:.2f}x", by_cpu,
             _per_round(result, reference, target), f">= {target:g}x" if target else "-", verdict]
        )  # fmt: skip
    if not lines:
        return []
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|---|---|---:|---:|---:|---:|---:|---|---|"]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
    else:
        widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
        left = {0, 1, 7, 8}

        def fmt(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        out = [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(cells) for cells in lines]
    reads = [by_key[key] for key in CACHED_READS if key in by_key and by_key[key].rps]
    if reads:
        over = [r for r in reads if r.p99_ms > P99_TARGET_MS]
        verdict = "meets" if not over else "misses: " + ", ".join(f"({r.row.key}) {r.p99_ms:.1f} ms" for r in over)
        worst = max(reads, key=lambda r: r.p99_ms)
        highest = f"highest ({worst.row.key}) {worst.p99_ms:.1f} ms"
        if sliced := [r for r in reads if r.slice_p99_ms is not None]:
            slowest = max(sliced, key=lambda r: r.slice_p99_ms or 0.0)
            highest += f"; highest p99 of one slice ({slowest.row.key}) {slowest.slice_p99_ms:.1f} ms"
        note = (
            ""
            if connections == P99_TARGET_CONNECTIONS
            else f"; the target is judged at --connections {P99_TARGET_CONNECTIONS}, this run used {connections}"
        )
        out += [
            "",
            f"p99 of every cached read ({', '.join(f'({r.row.key})' for r in reads)}) <= {P99_TARGET_MS:g} ms: "
            f"{verdict} ({highest}){note}",
        ]
    return out


def round_ratios(result: Result, reference: Result) -> list[float]:
    """The ratio of each round of an interleaved group: `result`'s req/s over `reference`'s in the same
    round, the two measured within one round's length of each other. Empty unless both rows ran in
    the rounds of one group, more than one."""
    rounds, others = result.round_rps, reference.round_rps
    if not result.group or result.group != reference.group or len(rounds) < 2 or not all(others):
        return []
    return [mine / other for mine, other in zip(rounds, others, strict=True)]


def _per_round(result: Result, reference: Result, target: float | None) -> str:
    """'0.81-1.06x; 3/5 meet': the lowest and highest ratio of one round, and with a target how many
    rounds met it; how far the run's ratio can be trusted (bench/README.md, "How to read the ratios")."""
    ratios = round_ratios(result, reference)
    if not ratios:
        return "-"
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}x"
    if target is None:
        return spread
    return f"{spread}; {sum(ratio >= target for ratio in ratios)}/{len(ratios)} meet"


def _ratio_line(by_key: dict[str, Result], row: str, base: str, target: float) -> str:
    """'(row) / (base) = 1.23x by req/s (meets the target of >= 1x); by server CPU per request …'."""
    result, reference = by_key.get(row), by_key.get(base)
    if not result or not reference or result.failure or reference.failure or not reference.rps:
        return ""
    ratio = result.rps / reference.rps
    verdict = "meets" if ratio >= target else "misses"
    by_cpu = (
        f"; by server CPU per request {reference.cpu_ms / result.cpu_ms:.2f}x"
        if result.cpu_ms and reference.cpu_ms
        else ""
    )
    return f"({row}) / ({base}) = {ratio:.2f}x by req/s ({verdict} the target of >= {target:g}x){by_cpu}"


def _cost_line(by_key: dict[str, Result], row: str, base: str, target: float | None) -> str:
    """'(row) / (base) = 0.90x by req/s (cost 10%; meets the target of <= 15%); by server CPU per
    request +11%': what `row` loses against `base` (the same request, less switched on)."""
    result, reference = by_key.get(row), by_key.get(base)
    if not result or not reference or result.failure or reference.failure or not reference.rps:
        return ""
    ratio = result.rps / reference.rps
    cost = 1 - ratio
    verdict = f"; {'meets' if cost <= target else 'misses'} the target of <= {target:.0%}" if target is not None else ""
    by_cpu = (
        f"; by server CPU per request {result.cpu_ms / reference.cpu_ms - 1:+.0%}"
        if result.cpu_ms and reference.cpu_ms
        else ""
    )
    return f"({row}) / ({base}) = {ratio:.2f}x by req/s (cost {cost:.0%}{verdict}){by_cpu}"


def documented_settings() -> set[str]:
    """The names of the variables taskhub reads (.env.example lists every one)."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}


def settings_from_environment(args: argparse.Namespace) -> dict[str, str]:
    """taskhub's settings set in the bench's own environment, which reach every taskhub server
    (`server_environment`) unless the bench sets them itself: the header names them, so a run made
    with, say, CACHE_LOCAL_SECONDS=30 says so."""
    own = set(bench_settings(args)) | {"DJANGO_DEBUG"}
    return {name: os.environ[name] for name in sorted(documented_settings() - own) if name in os.environ}


def describe_run(args: argparse.Namespace) -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    twin = getattr(args, "twin", None)
    twin_text = (
        f"; ({TWIN_ROW})'s server also has " + " ".join(f"{k}={shlex.quote(v)}" for k, v in twin.items())
        if twin
        else ""
    )
    inherited = settings_from_environment(args)
    inherited_text = (
        "; taskhub's servers also have " + " ".join(f"{k}={shlex.quote(v)}" for k, v in inherited.items())
        if inherited
        else ""
    )
    return (
        f"taskhub HTTP bench {datetime.now(UTC):%Y-%m-%d %H:%M UTC}"
        f"{f' @ {commit}' if commit else ''}; {os.cpu_count()} CPUs, load {load}; "
        f"server: {SERVER_NAMES[args.server].format(threads=blocking_threads(os.environ))} "
        f"on CPU {args.server_cpu}; "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s (+{args.warmup}s warm-up) on CPU {args.load_cpu}"
        f"{inherited_text}{twin_text}"
    )


# -- main --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
    if shutil.which("taskset") is None:
        raise BenchError("taskset is not installed (Debian: util-linux)")
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        log(f"warning: only CPUs {sorted(allowed)} are available; server and wrk will share a core")

    # SIGTERM behaves like Ctrl-C: unwind through the `finally` that stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    env = server_environment(args)
    ensure_database(args.database_url)
    check_redis(args.redis_url)
    fixture = prepare_data(env)
    out_dir = RESULTS_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)

    server = Server(args.server, env, args.port or free_port(), args.server_cpu, out_dir / "server.log")
    grpc_server = Server("grpc", env, free_port(), args.server_cpu, out_dir / "grpc-server.log")
    # The servers of the other rows, one per variant (SERVER_VARIANTS), started when their group runs
    # and stopped when it is done.
    variants: dict[str, Server] = {}
    unavailable: dict[str, RowUnavailable] = {}
    scratch = Path(tempfile.mkdtemp(prefix="taskhub-bench-"))
    rows = {row.key: row for row in ROWS}
    refs = References()

    def server_for(row: Row) -> Server:
        if not row.server:
            return grpc_server if row.grpc_method else server
        if row.server in unavailable:
            raise unavailable[row.server]
        if row.server not in variants:
            try:
                candidate = variant_server(args, row.server, env, Path(tempfile.mkdtemp(dir=scratch)), out_dir)
                variants[row.server] = candidate  # before it starts, so that `finally` stops it
                candidate.start()
                if SERVER_VARIANTS[row.server]:  # taskhub's: its /health says how it runs
                    check_variant(candidate, fixture, row.server)
            except (RowUnavailable, BenchError) as error:
                if row.server in variants:
                    variants.pop(row.server).stop()
                skipped = isinstance(error, RowUnavailable) and error.skipped
                unavailable[row.server] = RowUnavailable(f"{row.server} server: {error}", skipped=skipped)
                raise unavailable[row.server] from None
        return variants[row.server]

    def run_group(keys: tuple[str, ...]) -> list[Result]:
        """Check each row of the group on its server, then measure those that answered (interleaved
        when there are several); the group's own servers are stopped after it."""
        done: dict[str, Result] = {}
        ready: list[Row] = []
        servers: dict[str, Server] = {}
        for key in keys:
            row = rows[key]
            try:
                servers[key] = server_for(row)
                if row.server:
                    try:
                        check_row(row, servers[key], fixture, refs)
                    except (ValueError, OSError) as error:  # not JSON, no answer
                        raise RowUnavailable(f"({key}) check failed: {error!r}") from None
                ready.append(row)
            except RowUnavailable as error:
                done[key] = Result(row, skipped=str(error)) if error.skipped else Result(row, failure=str(error))
                log(f"({key}) {'skipped' if error.skipped else 'FAILED'}: {error}")
        if len(ready) > 1:
            measured = run_interleaved(args, ready, servers, fixture, out_dir, pg_sessions)
        else:
            measured = [measure(args, row, servers[row.key], fixture, out_dir, pg_sessions) for row in ready]
        done.update((result.row.key, result) for result in measured)
        for key in keys:  # the group's servers, those whose rows failed their check too
            if rows[key].server in variants:
                variants.pop(rows[key].server).stop()
        return [done[key] for key in keys]

    sizes: dict[str, int] = {}
    pg_sessions = PostgresSessions(args.database_url)
    results: list[Result] = []
    description = describe_run(args)
    try:
        reset_peer_cache(args.redis_url, env["CACHE_KEY_PREFIX"])
        server.start()
        grpc_server.start()
        check_rows(server, fixture)
        sizes = check_grpc_rows(grpc_server.port, fixture)
        with urllib.request.urlopen(
            urllib.request.Request(
                f"{server.base_url}/api/v1/tasks/{fixture.task_id}",
                headers={"Authorization": f"Bearer {fixture.token}"},
            )
        ) as response:
            sizes["json"] = len(response.read())
        http(f"{server.base_url}/api/v1/tasks?limit={LIST_LIMIT}", fixture.token)  # cache the page again
        try:
            refs = take_references(server, grpc_server.port, fixture)
        except RowUnavailable as error:
            raise BenchError(f"taskhub's own answers could not be read: {error}") from None
        for item in RUN_ORDER:
            keys = tuple(key for key in (item if isinstance(item, tuple) else (item,)) if key in args.rows)
            if keys:
                results += run_group(keys)
        for result in results:
            if result.failure:
                log(f"({result.row.key}) FAILED: {result.failure}")
    finally:
        server.stop()
        grpc_server.stop()
        for variant in variants.values():
            variant.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    table = render_table(results, args.markdown, args.connections)
    if sizes.get("json"):
        share = sizes["protobuf"] / sizes["json"]
        verdict = "meets" if share <= 0.55 else "misses"
        table += (
            f"\none task: protobuf {sizes['protobuf']} B, JSON {sizes['json']} B = {share:.0%} "
            f"({verdict} the target of <= 55%)"
        )
    report = f"{description}\n\n{table}\n"
    if args.scale:  # after the servers have stopped: the queries have the CPU to themselves
        from bench.scale import ScaleError, run_scale

        log("lists and search at scale (bench/scale.py)")
        try:
            # Met or missed is in the text; like a row's target, it does not change the exit status.
            scale_text, _ = run_scale(args.database_url, markdown=args.markdown)
        except ScaleError as error:
            raise BenchError(f"lists and search at scale: {error}") from None
        report += f"\n{scale_text}\n"
    (out_dir / ("summary.md" if args.markdown else "summary.txt")).write_text(report)
    (out_dir / "results.json").write_text(json.dumps(result_records(results, args.twin), indent=2))
    print(report)
    log(f"raw wrk outputs and the server log: {out_dir.relative_to(ROOT)}/")
    return 1 if any(r.failure for r in results) else 0


def result_records(results: list[Result], twin: Mapping[str, str]) -> list[dict[str, Any]]:
    """results.json: a record per row; (A)'s names the variables --twin set on its server."""
    return [
        {
            "row": r.row.key,
            "label": r.row.label,
            "requests": r.requests,
            "seconds": r.seconds,
            "rps": round(r.rps, 1),
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
            "round_rps": [round(rps, 1) for rps in r.round_rps],
            "group": list(r.group),  # the rows whose rounds were measured with this row's
            "cpu_ms_per_request": r.cpu_ms,
            "cpu_system_ms_per_request": r.cpu_system_ms,
            "pg_connections_per_request": r.pg_connections,
            "non2xx": r.non2xx,
            "graphql_errors": r.graphql_errors,
            "socket_errors": r.socket_errors,
            "failure": r.failure,
            "skipped": r.skipped,
            **({"twin": dict(twin)} if r.row.server == "twin" else {}),
        }
        for r in results
    ]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
