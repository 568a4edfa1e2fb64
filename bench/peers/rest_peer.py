"""The FastAPI peer of bench rows (a) and (b): what a FastAPI engineer would write to serve taskhub's
cached `GET /api/v1/tasks/{task_id}` and `GET /api/v1/tasks?limit=N` with the same concerns.

Concerns (bench/peers/concerns.py, switched by taskhub's environment variables): HS256 JWT with verified
tokens remembered, the caller's rate limit (RATE_LIMITS_ENABLED), owner/manager visibility (404 for
anybody else), ETag and If-None-Match (304), X-Request-ID, taskhub's security headers, the request
metrics (METRICS_ENABLED, PROMETHEUS_MULTIPROC_DIR) and the JSON access line (LOG_LEVEL=INFO); gzip of
bodies of 1 KiB or more for clients that accept it, as taskhub. The task is its rendered JSON from one
Redis GET (PostgreSQL on a miss); the list is the first page in taskhub's default ordering
(-created_at) from the page cache, with taskhub's `next` link and cursor. The bodies are taskhub's.

Served by bench/run.py from the peers' own virtualenv (bench/peers/requirements.txt):

    cd bench/peers && .venv/bin/granian --interface asgi --loop uvloop --workers 1 rest_peer:app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from urllib.parse import urlencode

import orjson
from concerns import (
    TASK_ID,
    Actor,
    ConcernsMiddleware,
    Problem,
    authenticate_and_limit,
    current,
    metrics_text,
    not_found,
    page_entry,
    shutdown,
    task_entry,
)
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.middleware.gzip import GZipMiddleware

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
VARY = "Accept, origin"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await shutdown()


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
app.add_middleware(GZipMiddleware, minimum_size=1024)
app.add_middleware(ConcernsMiddleware)  # the last added runs first: it sees the whole request


@app.exception_handler(Problem)
async def problem_response(request: Request, problem: Problem) -> Response:
    return Response(
        problem.body(current.get().request_id),
        status_code=problem.status,
        media_type="application/problem+json",
        headers={"Vary": VARY, **problem.headers},
    )


async def api_actor(request: Request) -> Actor:
    """The caller, authenticated and counted; names the route for the metrics and the access line."""
    observation = current.get()
    observation.protocol = "rest"
    observation.endpoint = request.scope["route"].path
    client = request.client.host if request.client else "unknown"
    return await authenticate_and_limit(request.headers.get("authorization"), client)


Caller = Annotated[Actor, Depends(api_actor)]


def _not_modified(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


@app.get("/api/v1/tasks/{task_id}")
async def task_detail(task_id: str, request: Request, actor: Caller) -> Response:
    entry = await task_entry(task_id) if TASK_ID.match(task_id) else None
    if entry is None or not (actor.sees_all or entry[0] == actor.id):
        raise not_found()
    _, version, body = entry
    headers = {"ETag": f'"{version}"', "Vary": VARY}
    if _not_modified(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _bad_parameter(name: str, message: str) -> Problem:
    return Problem(400, "invalid", "Bad Request", f"{name}: {message}")


@app.get("/api/v1/tasks")
async def task_list(request: Request, actor: Caller) -> Response:
    params = dict(request.query_params)
    if unknown := sorted(set(params) - {"limit"}):
        raise _bad_parameter(unknown[0], "Unknown query parameter (the peer serves the first page only).")
    text = params.get("limit")
    if text is not None and not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        raise _bad_parameter("limit", f"Must be a whole number from 1 to {MAX_LIMIT}.")
    limit = int(text) if text is not None else DEFAULT_LIMIT
    results, next_cursor, _ = await page_entry(actor, limit)
    next_url = None
    if next_cursor:
        query = urlencode(sorted({**params, "cursor": next_cursor}.items()))
        next_url = f"{request.url.scheme}://{request.headers.get('host', '')}{request.url.path}?{query}"
    body = b'{"results":' + results + b',"next":' + orjson.dumps(next_url) + b',"previous":null}'
    return Response(body, media_type="application/json", headers={"Vary": VARY})


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@app.get("/metrics")
async def metrics() -> Response:
    return Response(metrics_text(), media_type="text/plain; version=0.0.4")
