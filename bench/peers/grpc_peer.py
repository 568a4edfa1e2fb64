"""The gRPC peer of bench row (h): tasks.v1.TaskService/GetTask from a plain grpcio server, no Django.

What a gRPC engineer would write to serve the same call with the same concerns as taskhub's
`manage.py grpcserver`, and nothing of taskhub's code but the generated protobuf modules:

- the worker model of `grpcserver` for unary calls: a thread pool of GRPC_WORKERS threads (8; taskhub
  runs its streams on a pool of their own, and the peer has none) and GRPC_MAX_CONCURRENT_RPCS +
  GRPC_MAX_STREAMS calls at once;
- one interceptor whose wrapped handler is built once per method (as taskhub's), around each call:
  the request id (`x-request-id` kept when it is 1-128 safe characters, else a new one, returned
  in the trailing metadata); `api_requests_total`, `api_request_duration_seconds` and
  `api_active_requests` with taskhub's names and labels, label children resolved once
  (METRICS_ENABLED, default true; PROMETHEUS_MULTIPROC_DIR makes them multiprocess, as in taskhub);
  `authorization: Bearer <jwt>` verified with PyJWT (HS256, JWT_SIGNING_KEY, `exp`, `token_type`
  "access", `user_id`, `jti` required), verified tokens remembered until they expire (bounded LRU);
  the caller's rate limit when RATE_LIMITS_ENABLED (default true): taskhub's fixed windows
  (RATE_LIMIT_USER / RATE_LIMIT_ANON, same defaults), one pipelined INCR + EXPIRE NX per window,
  RESOURCE_EXHAUSTED with a `retry-after` trailer; one access line per call on the
  `taskhub.access` logger at INFO, written only when LOG_LEVEL lets it through (JSON, as taskhub's
  production format);
- GetTask: the serialized GetTaskResponse from one Redis GET (REDIS_URL), stored with the task's owner
  in front of it; on a miss, the row from PostgreSQL (DATABASE_URL) with psycopg, stored for
  CACHE_TTL (300) seconds. The owner, managers and staff (the roles travel in the JWT) see the task;
  anybody else, and an id that is not a task id, gets NOT_FOUND, like taskhub. The reply is the stored
  bytes: the same message taskhub sends.

The peer serves reads only; nothing invalidates its cache (the bench does not write the task it reads).

    .venv/bin/python bench/peers/grpc_peer.py --port PORT [--host 127.0.0.1] [--workers 8]

(`--workers` as grpcserver's: the threads of unary calls, GRPC_WORKERS.)

with the environment of taskhub's server (bench/run.py passes the same one). Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections import OrderedDict
from concurrent import futures
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import jwt
import psycopg
import redis
from prometheus_client import Counter, Gauge, Histogram

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the generated modules import no Django

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb

METHOD = "/tasks.v1.TaskService/GetTask"
PROTOCOL = "grpc"

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
    "api_active_requests", "Requests and calls in progress, by protocol.", ["protocol"], multiprocess_mode="livesum"
)

SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TASK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ROLES = frozenset({"viewer", "editor", "manager"})
PRIORITIES = {1: pb.PRIORITY_LOW, 2: pb.PRIORITY_MEDIUM, 3: pb.PRIORITY_HIGH}
STATUSES = {"todo": pb.STATUS_TODO, "in_progress": pb.STATUS_IN_PROGRESS, "completed": pb.STATUS_COMPLETED}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SELECT = (
    "SELECT id, owner_id, title, description, priority, status, completed, due_date, tags, created_at,"
    " updated_at, completed_at, version FROM tasks_task WHERE id = %s"
)
ABSENT = b"-"

access_logger = logging.getLogger("taskhub.access")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def rates(name: str, default: str) -> list[tuple[int, int]]:
    """'600/m,10000/h' -> [(600, 60), (10000, 3600)], as taskhub's RATE_LIMIT_* variables."""
    windows = []
    for rate in os.environ.get(name, default).split(","):
        count, _, period = rate.strip().partition("/")
        windows.append((int(count), int(period) if period.isdigit() else UNITS[period[:1]]))
    return windows


class Settings:
    def __init__(self) -> None:
        self.redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.database_url = os.environ["DATABASE_URL"]
        self.signing_key = os.environ["JWT_SIGNING_KEY"]
        self.metrics = env_bool("METRICS_ENABLED", True)
        self.rate_limits = env_bool("RATE_LIMITS_ENABLED", True)
        self.user_rates = rates("RATE_LIMIT_USER", "600/m,10000/h")
        self.anon_rates = rates("RATE_LIMIT_ANON", "60/m,1000/h")
        self.cache_ttl = int(os.environ.get("CACHE_TTL", "300"))
        self.workers = int(os.environ.get("GRPC_WORKERS", "8"))


class Denied(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, trailers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.trailers = code, message, trailers


class Caller:
    __slots__ = ("id", "sees_all")

    def __init__(self, id: int, sees_all: bool) -> None:
        self.id, self.sees_all = id, sees_all


class Tokens:
    """Verified access tokens until they expire: a token's verdict cannot change before then."""

    def __init__(self, key: str, size: int = 10_000) -> None:
        self.key, self.size = key, size
        self.entries: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self.lock = threading.Lock()

    def caller(self, authorization: str | None) -> Caller:
        if not authorization or not authorization.startswith("Bearer "):
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, "Authentication credentials were not provided.")
        token = authorization[7:]
        with self.lock:
            entry = self.entries.get(token)
            if entry is not None and entry[1] > time.time():
                self.entries.move_to_end(token)
                return entry[0]
        try:
            claims = jwt.decode(
                token, self.key, algorithms=["HS256"], options={"require": ["exp", "token_type", "user_id", "jti"]}
            )
            if claims["token_type"] != "access":
                raise jwt.InvalidTokenError("not an access token")
            roles = frozenset(claims.get("roles", ())) & ROLES
            caller = Caller(int(claims["user_id"]), bool(claims.get("staff")) or "manager" in roles)
            expires = float(claims["exp"])
        except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, "The access token is invalid or has expired.") from None
        with self.lock:
            self.entries[token] = (caller, expires)
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return caller


class Peer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = Tokens(settings.signing_key)
        self.redis = redis.Redis.from_url(settings.redis_url)  # a thread-safe connection pool
        self.local = threading.local()
        self.requests_ok = REQUESTS.labels(PROTOCOL, "POST", METHOD, "OK")
        self.duration = DURATION.labels(PROTOCOL, "POST", METHOD)
        self.active = ACTIVE.labels(PROTOCOL)

    # -- the interceptor's concerns --------------------------------------------------------------------
    def call(self, behavior: Any, request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        metadata = dict(context.invocation_metadata())
        request_id = metadata.get("x-request-id")
        if not request_id or not SAFE_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex
        trailers: tuple[tuple[str, str], ...] = (("x-request-id", request_id),)
        metrics = self.settings.metrics
        if metrics:
            self.active.inc()
        code = grpc.StatusCode.OK
        caller = None
        try:
            try:
                caller = self.authenticate(metadata, context.peer())
                reply = behavior(request, caller)
            except Denied as denied:
                code = denied.code
                trailers += denied.trailers
                context.set_trailing_metadata(trailers)
                context.abort(denied.code, denied.message)
            context.set_trailing_metadata(trailers)
            return reply
        except Exception:
            if code == grpc.StatusCode.OK:
                code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        finally:
            elapsed = time.perf_counter() - started
            if metrics:
                self.active.dec()
                ok = code == grpc.StatusCode.OK
                (self.requests_ok if ok else REQUESTS.labels(PROTOCOL, "POST", METHOD, code.name)).inc()
                self.duration.observe(elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "%s %s",
                    METHOD,
                    code.name,
                    extra={
                        "request_id": request_id,
                        "protocol": PROTOCOL,
                        "method": "POST",
                        "route": METHOD,
                        "status": code.name,
                        "duration_ms": round(elapsed * 1000, 2),
                        "user_id": caller.id if caller else None,
                    },
                )

    def authenticate(self, metadata: dict[str, str], peer: str) -> Caller:
        try:
            caller = self.tokens.caller(metadata.get("authorization"))
        except Denied:
            if self.settings.rate_limits:
                address = peer.partition(":")[2].rpartition(":")[0].strip("[]")
                self.limit("anon", f"ip:{address}", self.settings.anon_rates)
            raise
        if self.settings.rate_limits:
            self.limit("user", f"user:{caller.id}", self.settings.user_rates)
        return caller

    def limit(self, scope: str, ident: str, windows: list[tuple[int, int]]) -> None:
        """One pipelined round trip: INCR + EXPIRE NX per window. Fails open if Redis does."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for _, seconds in windows:
            key = f"grpc-peer:rl:{scope}:{ident}:{seconds}:{int(now // seconds)}"
            pipe.incr(key)
            pipe.expire(key, seconds, nx=True)
        try:
            counts = pipe.execute()[::2]
        except redis.RedisError:
            return
        retry = 0
        for (allowed, seconds), count in zip(windows, counts, strict=True):
            if count > allowed:
                retry = max(retry, int((int(now // seconds) + 1) * seconds - now) + 1)
        if retry:
            raise Denied(grpc.StatusCode.RESOURCE_EXHAUSTED, "Request was throttled.", (("retry-after", str(retry)),))

    # -- GetTask ------------------------------------------------------------------------------------
    def get_task(self, request: pb.GetTaskRequest, caller: Caller) -> bytes:
        task_id = request.id
        if not TASK_ID.match(task_id):
            raise Denied(grpc.StatusCode.NOT_FOUND, "No task with this id is visible to you.")
        key = f"grpc-peer:task:{task_id}"
        try:
            stored = self.redis.get(key)
        except redis.RedisError:
            stored = None
        if stored is None:
            stored = self.load(task_id)
            with contextlib.suppress(redis.RedisError):
                self.redis.set(key, stored, ex=self.settings.cache_ttl)
        if stored == ABSENT:
            raise Denied(grpc.StatusCode.NOT_FOUND, "No task with this id is visible to you.")
        owner, _, reply = stored.partition(b" ")
        if not caller.sees_all and int(owner) != caller.id:
            raise Denied(grpc.StatusCode.NOT_FOUND, "No task with this id is visible to you.")
        return reply

    def load(self, task_id: str) -> bytes:
        """`<owner id> <serialized GetTaskResponse>` of the row, or ABSENT."""
        connection = getattr(self.local, "connection", None)
        if connection is None or connection.closed:
            connection = self.local.connection = psycopg.connect(self.settings.database_url, autocommit=True)
        row = connection.execute(SELECT, (task_id,)).fetchone()
        if row is None:
            return ABSENT
        (pk, owner, title, description, priority, status, completed, due, tags, created, updated, done, version) = row
        task = pb.Task(
            id=str(pk),
            owner_id=owner,
            title=title,
            description=description,
            priority=PRIORITIES[priority],
            status=STATUSES[status],
            completed=completed,
            tags=tags,
            version=version,
        )
        times = {"due_date": due, "created_at": created, "updated_at": updated, "completed_at": done}
        for field, value in times.items():
            if value is not None:
                getattr(task, field).FromDatetime(value)
        return f"{owner} ".encode() + pb.GetTaskResponse(task=task).SerializeToString()


class Interceptor(grpc.ServerInterceptor):
    """Wraps TaskService methods once (grpcio asks for the handler on every call)."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        wrapped = self.handlers.get(details.method)
        if wrapped is not None:
            return wrapped
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            partial(self.peer.call, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self.handlers[details.method] = wrapped
        return wrapped


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "protocol", "method", "route", "status", "duration_ms", "user_id"):
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        return json.dumps(entry, default=str)


def serve(host: str, port: int, workers: int) -> tuple[grpc.Server, int]:
    peer = Peer(Settings())
    streams = int(os.environ.get("GRPC_MAX_STREAMS", "100"))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        interceptors=[Interceptor(peer)],
        maximum_concurrent_rpcs=int(os.environ.get("GRPC_MAX_CONCURRENT_RPCS", "64")) + streams,
    )
    # The reply is already the serialized GetTaskResponse: no response serializer.
    get_task = grpc.unary_unary_rpc_method_handler(
        peer.get_task, request_deserializer=pb.GetTaskRequest.FromString, response_serializer=None
    )
    service = grpc.method_handlers_generic_handler("tasks.v1.TaskService", {"GetTask": get_task})
    server.add_generic_rpc_handlers((service,))
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise SystemExit(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GRPC_WORKERS", "8")))
    args = parser.parse_args()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), handlers=[handler])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    server, port = serve(args.host, args.port, args.workers)
    logging.getLogger("grpc_peer").warning("grpc peer: tasks.v1.TaskService/GetTask on %s:%s", args.host, port)
    while not stopping.wait(0.5):
        pass
    server.stop(2).wait()


if __name__ == "__main__":
    main()
