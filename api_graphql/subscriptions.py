"""The `taskEvents` subscription: live task events, over the websocket (api_graphql/websocket.py).

The resolver is an async generator over one `tasks.events.Subscription`: the domain applies the
visibility and the filters, counts the streams and ends a stream with an error (expired credential,
slow consumer, shutdown), which the websocket handler sends as the operation's `error` message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from enum import Enum

import strawberry
from django.conf import settings
from strawberry import UNSET

from api_graphql.context import stream_identity
from api_graphql.inputs import set_fields
from api_graphql.scalars import DateTime
from api_graphql.types import Priority, Status, TaskType
from tasks.events import EventType, TaskEvent, event_filter, subscribe
from tasks.events import Subscription as EventSubscription


@strawberry.enum(name="TaskEventType")
class EventKind(Enum):
    CREATED = EventType.CREATED.value
    UPDATED = EventType.UPDATED.value
    COMPLETED = EventType.COMPLETED.value
    DELETED = EventType.DELETED.value
    GAP = strawberry.enum_value(
        EventType.GAP.value,
        description="Events after the id you resumed from are no longer in the log: read the list again. "
        "The stream goes on after it; its `id` is where it continues from.",
    )


@strawberry.type(name="TaskEvent", description="One committed change of a task.")
class TaskEventType:
    id: str = strawberry.field(description="The event's position in the log: pass the last one seen as `after`.")
    type: EventKind
    task_id: strawberry.ID | None = strawberry.field(description="Null for GAP.")
    owner_id: int | None = strawberry.field(description="The owner's user id; null for GAP.")
    version: int | None = strawberry.field(description="The task's version after the change; null for GAP.")
    occurred_at: DateTime
    task: TaskType | None = strawberry.field(description="The task after the change; null for DELETED and GAP.")

    @classmethod
    def of(cls, event: TaskEvent) -> TaskEventType:
        return cls(
            id=event.id,
            type=EventKind(event.type.value),
            task_id=strawberry.ID(str(event.task_id)) if event.task_id is not None else None,
            owner_id=event.owner_id,
            version=event.version,
            occurred_at=event.occurred_at,
            task=event.task,  # type: ignore[arg-type]  # a Task model instance: strawberry_django's type
        )


@strawberry.input(description="Filters combine with AND. A filter left out or null does not filter.")
class TaskEventFilterInput:
    status: Status | None = UNSET
    priority: Priority | None = UNSET
    tag: str | None = UNSET
    mine: bool | None = strawberry.field(default=UNSET, description="Only your own tasks, whatever your role.")


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Changes of the tasks you may see (managers: everybody's), from now, or from just after "
        "`after` (the `id` of the last event you saw): those first, once and in order, then live ones."
    )
    async def task_events(
        self, info: strawberry.Info, filters: TaskEventFilterInput | None = None, after: str | None = None
    ) -> AsyncGenerator[TaskEventType, None]:
        actor, credential = stream_identity(info)
        chosen = {name: value for name, value in set_fields(filters).items() if value is not None} if filters else {}
        # On a thread: subscribing reads the log's position (Redis), which must not stall the loop.
        opening = asyncio.ensure_future(
            asyncio.to_thread(
                subscribe,
                actor=actor,
                credential=credential,
                filters=event_filter(**chosen),
                after=after,
                protocol="graphql",
            )
        )
        try:
            subscription = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The client completed the operation or left while the thread subscribes, which it does
            # anyway: close what it opens, or its stream slot is held for the life of the process.
            opening.add_done_callback(_close_opened)
            raise
        try:
            while True:
                # An empty batch after the timeout: nothing to send (the handler pings the client
                # itself). Each wait ends in time for the domain's next check of the credential.
                for event in await subscription.anext(timeout=settings.EVENTS_REAUTH_INTERVAL):
                    yield TaskEventType.of(event)
        finally:
            subscription.close()


def _close_opened(opening: asyncio.Future[EventSubscription]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
