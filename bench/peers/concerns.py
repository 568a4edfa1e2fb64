"""What the FastAPI peers (rest_peer.py, graphql_peer.py) share: taskhub's concerns, written the way a
FastAPI engineer would, with no code of taskhub's. Configured by taskhub's own environment variables:

- JWT_SIGNING_KEY: HS256 access tokens as taskhub issues them (`exp`, `token_type` "access", `user_id`,
  `jti` required; roles and staff in the claims, so no user query). Verified tokens are remembered
  until they expire (bounded, like taskhub's `core.auth.verified_tokens`).
- REDIS_URL (cache and rate-limit counters), CACHE_KEY_PREFIX (default "taskhub"; the peers' keys are
  `<prefix>:peer:…`, apart from taskhub's), CACHE_TTL (300 s), CACHE_ENABLED (default true).
- DATABASE_URL: PostgreSQL, read with psycopg on a cache miss (taskhub's `tasks_task` table).
- METRICS_ENABLED (default true) and PROMETHEUS_MULTIPROC_DIR: `api_requests_total`,
  `api_request_duration_seconds`, `api_active_requests`, `api_cache_hits_total`,
  `api_cache_misses_total` with taskhub's names, labels and buckets; /metrics.
- RATE_LIMITS_ENABLED (default true), RATE_LIMIT_USER / RATE_LIMIT_ANON (taskhub's defaults): fixed
  windows counted in Redis, one pipelined INCR + EXPIRE NX per window, 429 + Retry-After, RateLimit-*.
- LOG_LEVEL (default INFO): one JSON access line per request on the `taskhub.access` logger at INFO.

The cache holds what the peer sends: a task's rendered JSON with its owner and version beside it
(`<owner> <version>\\n<json>`), and a list page's rendered results with its cursors beside them.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import logging
import math
import os
import re
import sys
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
import psycopg
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


SIGNING_KEY = os.environ.get("JWT_SIGNING_KEY", "")
if not SIGNING_KEY:
    raise SystemExit("JWT_SIGNING_KEY must be set")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:5432/taskhub")
PREFIX = os.environ.get("CACHE_KEY_PREFIX", "taskhub") + ":peer:"
CACHE_TTL = int(os.environ.get("CACHE_TTL", "300"))
CACHE_ENABLED = _bool("CACHE_ENABLED", True)
METRICS_ENABLED = _bool("METRICS_ENABLED", True)
RATE_LIMITS_ENABLED = _bool("RATE_LIMITS_ENABLED", True)
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()

# The headers taskhub sends on every API response (Django's security middleware, django-csp, its
# Cache-Control for answers that depend on who asks, CORS' Vary), in ASGI form.
CSP = (
    "img-src 'self' data:; base-uri 'self'; object-src 'none'; worker-src 'self' blob:; form-action 'self'; "
    "script-src 'self'; frame-ancestors 'none'; connect-src 'self'; default-src 'self'; "
    "style-src 'self' 'unsafe-inline'; font-src 'self' data:"
)
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"private, no-cache"),
]

# -- the request's context ------------------------------------------------------------------------------


class Observation:
    """What the middleware reports for one request; the endpoint sets the route, user and limits."""

    __slots__ = ("endpoint", "protocol", "rate_limit", "request_id", "user_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.protocol = "http"
        self.endpoint = "unmatched"
        self.user_id: int | None = None
        self.rate_limit: tuple[int, int, int] | None = None  # limit, remaining, reset


current: contextvars.ContextVar[Observation] = contextvars.ContextVar("observation")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# -- errors ---------------------------------------------------------------------------------------------


class Problem(Exception):
    """An RFC 9457 answer, as taskhub spells its problems."""

    def __init__(self, status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.headers = headers or {}

    def body(self, request_id: str) -> bytes:
        return orjson.dumps(
            {
                "type": f"urn:taskhub:problem:{self.code}",
                "title": self.title,
                "status": self.status,
                "detail": self.detail,
                "code": self.code,
                "request_id": request_id,
            }
        )


def not_found() -> Problem:
    return Problem(404, "not_found", "Not Found", "No task with this id is visible to you.")


def not_authenticated(detail: str = "The access token is invalid or has expired.") -> Problem:
    return Problem(401, "not_authenticated", "Unauthorized", detail, {"WWW-Authenticate": 'Bearer realm="api"'})


# -- JWT ------------------------------------------------------------------------------------------------


class Actor:
    __slots__ = ("id", "sees_all")

    def __init__(self, id: int, sees_all: bool) -> None:
        self.id, self.sees_all = id, sees_all


_verified: OrderedDict[str, tuple[Actor, float]] = OrderedDict()
_VERIFIED_MAX = 10_000


def authenticate(authorization: str | None) -> Actor:
    """The actor of an `Authorization: Bearer <access token>` value. Raises Problem 401."""
    if authorization is None:
        raise not_authenticated("Authentication credentials were not provided.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise not_authenticated("Send `Authorization: Bearer <access token>`.")
    token = token.strip()
    entry = _verified.get(token)
    if entry is not None:
        if entry[1] > time.time():
            return entry[0]
        del _verified[token]
    try:
        claims = jwt.decode(
            token,
            SIGNING_KEY,
            algorithms=["HS256"],
            leeway=0,
            options={"require": ["exp", "token_type", "user_id", "jti"]},
        )
        if claims["token_type"] != "access":
            raise jwt.InvalidTokenError("Not an access token.")
        roles = claims.get("roles") or ()
        actor = Actor(int(claims["user_id"]), bool(claims.get("staff")) or "manager" in roles)
        expires_at = float(claims["exp"])
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError) as exc:
        raise not_authenticated() from exc
    _verified[token] = (actor, expires_at)
    if len(_verified) > _VERIFIED_MAX:
        _verified.popitem(last=False)
    return actor


# -- Redis, PostgreSQL ------------------------------------------------------------------------------------

redis_client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.25, socket_timeout=0.25)
_pool: AsyncConnectionPool | None = None


async def _configure(connection: psycopg.AsyncConnection[Any]) -> None:
    await connection.execute("SET TIME ZONE 'UTC'")
    await connection.commit()


async def database() -> AsyncConnectionPool:
    global _pool
    if _pool is None:
        _pool = AsyncConnectionPool(DATABASE_URL, min_size=1, max_size=4, configure=_configure, open=False)
        await _pool.open()
    return _pool


async def shutdown() -> None:
    if _pool is not None:
        await _pool.close()
    await redis_client.aclose()


# -- rendering: the JSON taskhub's REST API sends ------------------------------------------------------

COLUMNS = (
    "id, owner_id, title, description, priority, status, completed, due_date, tags, created_at, updated_at,"
    " completed_at, version"
)
PRIORITY_NAMES = {1: "low", 2: "medium", 3: "high"}


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def task_json(row: tuple[Any, ...]) -> dict[str, Any]:
    (task_id, owner, title, description, priority, status, completed, due, tags, created, updated, done, version) = row
    return {
        "id": str(task_id),
        "owner": owner,
        "title": title,
        "description": description,
        "priority": PRIORITY_NAMES[priority],
        "status": status,
        "completed": completed,
        "due_date": iso(due),
        "tags": tags,
        "created_at": iso(created),
        "updated_at": iso(updated),
        "completed_at": iso(done),
        "version": version,
    }


def cursor_after_task(task_id: object, created_at: datetime) -> str:
    """taskhub's cursor of the page after a task in the default ordering (-created_at)."""
    payload = {"o": "-created_at", "f": True, "v": created_at.isoformat(), "i": str(task_id)}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def cursor_after(row: tuple[Any, ...]) -> str:
    return cursor_after_task(row[0], row[9])


# -- cache: one task --------------------------------------------------------------------------------------

TASK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def task_entry(task_id: str) -> tuple[int, int, bytes] | None:
    """(owner, version, rendered JSON) of a task: one Redis GET, or PostgreSQL on a miss (then cached)."""
    key = f"{PREFIX}task:{task_id}"
    cached = None
    if CACHE_ENABLED:
        try:
            cached = await redis_client.get(key)
        except aioredis.RedisError:
            cached = None
    if cached is not None:
        count_cache(hit=True)
        head, _, body = cached.partition(b"\n")
        if head == b"-":
            return None
        owner, _, version = head.partition(b" ")
        return int(owner), int(version), body
    count_cache(hit=False)
    pool = await database()
    async with pool.connection() as connection:
        cursor = await connection.execute(f"SELECT {COLUMNS} FROM tasks_task WHERE id = %s", [task_id])
        row = await cursor.fetchone()
    if row is None:
        entry, result = b"-\n", None
    else:
        body = orjson.dumps(task_json(row))
        entry, result = b"%d %d\n%s" % (row[1], row[12], body), (row[1], row[12], body)
    if CACHE_ENABLED:
        with contextlib.suppress(aioredis.RedisError):
            await redis_client.set(key, entry, ex=CACHE_TTL if row is not None else 30, nx=True)
    return result


# -- cache: a list page (the first page in the default ordering, `limit` tasks) ------------------------
# A page is cached under its scope's generation (a write would INCR the generation of its owner and of
# "all", orphaning every cached page of both scopes at once, as taskhub does), so a page costs two GETs.


async def page_entry(actor: Actor, limit: int) -> tuple[bytes, str | None, str | None]:
    """(rendered results array, next cursor, end cursor) of the actor's first page of `limit` tasks."""
    scope = "all" if actor.sees_all else f"owner:{actor.id}"
    generation_key = f"{PREFIX}generation:{scope}"
    generation = None
    if CACHE_ENABLED:
        try:
            generation = await redis_client.get(generation_key)
            if generation is None:
                await redis_client.set(generation_key, time.time_ns(), nx=True)
                generation = await redis_client.get(generation_key)
        except aioredis.RedisError:
            generation = None
    key = f"{PREFIX}list:{scope}:{generation.decode() if generation else '-'}:{limit}"
    if generation is not None:
        try:
            cached = await redis_client.get(key)
        except aioredis.RedisError:
            cached = None
        if cached is not None:
            count_cache(hit=True)
            head, _, results = cached.partition(b"\n")
            next_cursor, _, end_cursor = head.decode().partition(" ")
            return results, next_cursor or None, end_cursor or None
    count_cache(hit=False)
    where = "" if actor.sees_all else "WHERE owner_id = %s"
    pool = await database()
    async with pool.connection() as connection:
        cursor = await connection.execute(
            f"SELECT {COLUMNS} FROM tasks_task {where} ORDER BY created_at DESC, id DESC LIMIT %s",
            [limit + 1] if actor.sees_all else [actor.id, limit + 1],
        )
        rows = await cursor.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    results = orjson.dumps([task_json(row) for row in rows])
    next_cursor = cursor_after(rows[-1]) if more else None
    end_cursor = cursor_after(rows[-1]) if rows else None
    if generation is not None:
        entry = f"{next_cursor or ''} {end_cursor or ''}\n".encode() + results
        with contextlib.suppress(aioredis.RedisError):
            await redis_client.set(key, entry, ex=CACHE_TTL, nx=True)
    return results, next_cursor, end_cursor


# -- rate limits ------------------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _windows(name: str, default: str) -> list[tuple[int, int]]:
    windows = []
    for rate in os.environ.get(name, default).split(","):
        count, _, period = rate.strip().partition("/")
        seconds = int(period) if period.isdigit() else _UNITS[period[:1]]
        windows.append((int(count), seconds))
    return windows


WINDOWS = {"user": _windows("RATE_LIMIT_USER", "600/m,10000/h"), "anon": _windows("RATE_LIMIT_ANON", "60/m,1000/h")}


async def rate_limit(scope: str, ident: str) -> None:
    """Count one request in every window of `scope` (one pipelined round trip); raise Problem 429 when
    a window is full. The strictest window goes into the RateLimit-* headers. Fails open."""
    if not RATE_LIMITS_ENABLED:
        return
    now = time.time()
    windows = WINDOWS[scope]
    pipe = redis_client.pipeline(transaction=False)
    for _, seconds in windows:
        key = f"{PREFIX}rl:{scope}:{ident}:{seconds}:{int(now // seconds)}"
        pipe.incr(key)
        pipe.expire(key, seconds, nx=True)
    try:
        counts = (await pipe.execute())[::2]
    except aioredis.RedisError:
        return
    strictest: tuple[int, int, int] | None = None
    refused = 0
    for (limit, seconds), count in zip(windows, counts, strict=True):
        reset = math.ceil((int(now // seconds) + 1) * seconds - now)
        remaining = max(limit - count, 0)
        if count > limit:
            refused = max(refused, reset)
        if strictest is None or remaining < strictest[1]:
            strictest = (limit, remaining, reset)
    current.get().rate_limit = strictest
    if refused:
        raise Problem(429, "rate_limited", "Too Many Requests", "Request was throttled.", {"Retry-After": str(refused)})


async def authenticate_and_limit(authorization: str | None, client: str) -> Actor:
    """Authenticate, then count the request: per user, or per client address when the credential is
    refused (so floods of bad credentials are limited too), like taskhub."""
    try:
        actor = authenticate(authorization)
    except Problem:
        await rate_limit("anon", f"ip:{client}")
        raise
    current.get().user_id = actor.id
    await rate_limit("user", f"user:{actor.id}")
    return actor


# -- metrics --------------------------------------------------------------------------------------------

if METRICS_ENABLED:
    from prometheus_client import Counter, Gauge, Histogram

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
    CACHE_HITS = Counter("api_cache_hits_total", "Cache reads that found the key.")
    CACHE_MISSES = Counter("api_cache_misses_total", "Cache reads that did not find the key.")

_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def count_cache(*, hit: bool) -> None:
    if METRICS_ENABLED:
        (CACHE_HITS if hit else CACHE_MISSES).inc()


def metrics_text() -> bytes:
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# -- access log -----------------------------------------------------------------------------------------


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(record.__dict__.get("fields", {}))
        return orjson.dumps(entry).decode()


access_logger = logging.getLogger("taskhub.access")
_handler = logging.StreamHandler(sys.stdout)
_handler.setFormatter(_JsonFormatter())
logging.basicConfig(level=LOG_LEVEL, handlers=[_handler])
ACCESS_LOG = access_logger.isEnabledFor(logging.INFO)

# -- the middleware ---------------------------------------------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


class ConcernsMiddleware:
    """A pure ASGI middleware (Starlette's BaseHTTPMiddleware costs a task and a stream per request):
    X-Request-ID in and out, the security headers, RateLimit-* headers, the request metrics and the
    access line. Endpoints fill in the protocol, route and user through `current`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        candidate = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                break
        request_id = candidate if candidate and _SAFE_ID.fullmatch(candidate) else uuid.uuid4().hex
        observation = Observation(request_id)
        token = current.set(observation)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        status = 500
        active = None

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status, active
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.extend(SECURITY_HEADERS)
                headers.append((b"x-request-id", request_id.encode()))
                if observation.rate_limit is not None:
                    limit, remaining, reset = observation.rate_limit
                    headers.append((b"ratelimit-limit", str(limit).encode()))
                    headers.append((b"ratelimit-remaining", str(remaining).encode()))
                    headers.append((b"ratelimit-reset", str(reset).encode()))
            await send(message)

        if METRICS_ENABLED:
            path = scope["path"]
            active = _child(
                ACTIVE, "rest" if path.startswith("/api/") else "graphql" if path[:8] == "/graphql" else "http"
            )
            active.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            current.reset(token)
            if METRICS_ENABLED:
                active.dec()
                _child(REQUESTS, observation.protocol, method, observation.endpoint, str(status)).inc()
                _child(DURATION, observation.protocol, method, observation.endpoint).observe(
                    time.perf_counter() - started
                )
            if ACCESS_LOG:
                access_logger.info(
                    "%s %s %s",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "trace_id": None,
                            "span_id": None,
                            "protocol": observation.protocol,
                            "method": method,
                            "path": scope["path"],
                            "route": observation.endpoint,
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                            "user_id": observation.user_id,
                        }
                    },
                )
