"""Mutation resolvers: each calls one service."""

from __future__ import annotations

import strawberry

from api_graphql.context import Context, actor_of
from api_graphql.inputs import TaskCreateInput, TaskPatchInput, write_fields
from api_graphql.types import TaskType
from core import ratelimit
from core.errors import RateLimited
from core.types import Actor
from tasks.services import task_create_idempotent, task_delete, task_update


def writer(info: strawberry.Info) -> Actor:
    """The actor of a write. The request counted once against its caller's rate limit
    (`views.GraphQLView`); each further mutation field of it counts once more, as each write is a
    request of its own over REST and gRPC: aliases (`a: createTask … b: createTask …`) do not make
    several writes of one count. A refused one is RATE_LIMITED and writes nothing; the ones before it
    stand, as mutation fields run one after the other."""
    actor = actor_of(info)
    context = info.context
    if isinstance(context, Context):
        context.writes += 1
        if context.writes > 1:
            decision = ratelimit.hit_caller(actor.id, "")
            if not decision.allowed:
                raise RateLimited(retry_after=decision.retry_after)
    return actor


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a task you own. A replay with the same idempotencyKey returns the first.")
    def create_task(
        self, info: strawberry.Info, input: TaskCreateInput, idempotency_key: str | None = None
    ) -> TaskType:
        created = task_create_idempotent(actor=writer(info), data=write_fields(input), idempotency_key=idempotency_key)
        return created.task  # type: ignore[return-value]

    @strawberry.mutation(description="Change some fields; with expectedVersion, only if the task is still at it.")
    def update_task(
        self, info: strawberry.Info, id: strawberry.ID, input: TaskPatchInput, expected_version: int | None = None
    ) -> TaskType:
        return task_update(  # type: ignore[return-value]
            actor=writer(info), task_id=id, changes=write_fields(input), expected_version=expected_version
        )

    @strawberry.mutation(
        description="Delete a task; true when it is gone. With expectedVersion, only if the task is still at it."
    )
    def delete_task(self, info: strawberry.Info, id: strawberry.ID, expected_version: int | None = None) -> bool:
        task_delete(actor=writer(info), task_id=id, expected_version=expected_version)
        return True
