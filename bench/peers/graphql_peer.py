"""The Strawberry-on-FastAPI peer of bench rows (e) and (f): `task(id)` and `tasks(first: N)` with
taskhub's GraphQL names and shapes (`Task`, `TaskConnection`, `TaskEdge`, `PageInfo`, the `Priority`
and `Status` enums, the `DateTime` scalar in isoformat) and the concerns of rest_peer.py
(bench/peers/concerns.py): the credential is checked and the request counted once per request (a bad
token is an UNAUTHENTICATED error of the field, a task nobody may see NOT_FOUND, with HTTP 200, as
taskhub answers), request metrics labelled by operation (`query Task`), the access line, the security
headers and X-Request-ID. The schema has taskhub's limits (depth 8, 15 aliases, 2,000 tokens), its parser
and validation caches, and no introspection (taskhub's production default). The data is the REST peer's
cache: a task's rendered JSON from one Redis GET, the page's from the page cache.

Served by bench/run.py from the peers' own virtualenv (bench/peers/requirements.txt):

    cd bench/peers && .venv/bin/granian --interface asgi --loop uvloop --workers 1 graphql_peer:app
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
import strawberry
from concerns import (
    TASK_ID,
    Actor,
    ConcernsMiddleware,
    Problem,
    authenticate_and_limit,
    current,
    cursor_after_task,
    metrics_text,
    page_entry,
    shutdown,
    task_entry,
)
from fastapi import FastAPI, Request
from fastapi.responses import Response
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from starlette.middleware.gzip import GZipMiddleware
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, SchemaExtension, ValidationCache
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.fastapi import GraphQLRouter
from strawberry.types import Info

DEFAULT_LIMIT, MAX_LIMIT = 20, 100


@strawberry.enum
class Priority(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum
class Status(Enum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@strawberry.type(name="Task")
class TaskType:
    id: strawberry.ID
    owner_id: int = strawberry.field(description="The owner's user id.")
    title: str
    description: str
    priority: Priority
    status: Status
    completed: bool
    due_date: datetime | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskType:
        """The task of the REST peer's rendered JSON."""
        return cls(
            id=strawberry.ID(data["id"]),
            owner_id=data["owner"],
            title=data["title"],
            description=data["description"],
            priority=Priority(data["priority"]),
            status=Status(data["status"]),
            completed=data["completed"],
            due_date=_time(data["due_date"]),
            tags=data["tags"],
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            completed_at=_time(data["completed_at"]),
            version=data["version"],
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class TaskEdge:
    node: TaskType

    @strawberry.field
    def cursor(self) -> str:
        """taskhub's cursor of the page after this task, made only when a client selects it."""
        return cursor_after_task(self.node.id, self.node.created_at)


@strawberry.type
class TaskConnection:
    edges: list[TaskEdge]
    page_info: PageInfo


def _actor(info: Info) -> Actor:
    context = info.context
    if context["actor"] is None:
        raise GraphQLError(context["problem"].detail, extensions={"code": "UNAUTHENTICATED"})
    return context["actor"]


@strawberry.type
class Query:
    @strawberry.field
    async def task(self, info: Info, id: strawberry.ID) -> TaskType | None:
        actor = _actor(info)
        entry = await task_entry(id) if TASK_ID.match(id) else None
        if entry is None or not (actor.sees_all or entry[0] == actor.id):
            raise GraphQLError("No task with this id is visible to you.", extensions={"code": "NOT_FOUND"})
        return TaskType.from_json(orjson.loads(entry[2]))

    @strawberry.field(description="The tasks you may see (managers: everybody's), `first` 1-100 (default 20).")
    async def tasks(self, info: Info, first: int | None = None) -> TaskConnection:
        actor = _actor(info)
        limit = DEFAULT_LIMIT if first is None else first
        if not 1 <= limit <= MAX_LIMIT:
            raise GraphQLError(f"first: Must be 1 to {MAX_LIMIT}.", extensions={"code": "BAD_USER_INPUT"})
        results, next_cursor, end_cursor = await page_entry(actor, limit)
        return TaskConnection(
            edges=[TaskEdge(node=TaskType.from_json(data)) for data in orjson.loads(results)],
            page_info=PageInfo(
                has_next_page=next_cursor is not None,
                has_previous_page=False,
                start_cursor=None,
                end_cursor=end_cursor,
            ),
        )


_seen_operations: set[str] = set()


class OperationName(SchemaExtension):
    """`query Task` as the metrics' endpoint label and the access line's route (bounded, as taskhub's)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        name = context.operation_name
        if name and name not in _seen_operations and len(_seen_operations) >= 100:
            name = "other"
        elif name:
            _seen_operations.add(name)
        current.get().endpoint = f"{context.operation_type.value} {name or 'anonymous'}"
        yield


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log only unexpected errors, as taskhub does: a refused credential or a hidden task is an answer."""
        unexpected = [error for error in errors if not (error.extensions or {}).get("code")]
        if unexpected:
            super().process_errors(unexpected, execution_context)


RULES = [depth_rule(8, None, None), alias_rule(15), NoSchemaIntrospectionCustomRule]
schema = Schema(
    query=Query,
    extensions=[
        lambda: AddValidationRules(RULES),
        lambda: MaxTokensLimiter(max_token_count=2000),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        OperationName,
    ],
)


async def graphql_context(request: Request) -> dict[str, Any]:
    """The caller once per request; a refused credential becomes the fields' UNAUTHENTICATED error."""
    observation = current.get()
    observation.protocol = "graphql"
    observation.endpoint = "invalid"
    client = request.client.host if request.client else "unknown"
    try:
        actor: Actor | None = await authenticate_and_limit(request.headers.get("authorization"), client)
        problem = None
    except Problem as refused:
        if refused.status != 401:
            raise
        actor, problem = None, refused
    return {"actor": actor, "problem": problem}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await shutdown()


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
app.add_middleware(GZipMiddleware, minimum_size=1024)
app.add_middleware(ConcernsMiddleware)
app.include_router(
    GraphQLRouter(
        schema, path="/graphql/", graphql_ide=None, allow_queries_via_get=False, context_getter=graphql_context
    )
)


@app.exception_handler(Problem)
async def problem_response(request: Request, problem: Problem) -> Response:
    return Response(
        problem.body(current.get().request_id),
        status_code=problem.status,
        media_type="application/problem+json",
        headers=problem.headers,
    )


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@app.get("/metrics")
async def metrics() -> Response:
    return Response(metrics_text(), media_type="text/plain; version=0.0.4")
