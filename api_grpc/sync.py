"""SyncTasks: a client's commands, their results and the events it may see, on one stream.

Three threads serve one stream. The call's pool thread sends: it takes responses from one bounded
queue (`Outbox`) and yields them. A reader thread takes the client's messages one at a time and runs
each command through the same code as its unary call (`api_grpc.commands`), with the same rate limit
and the stream's deadline; the result, or the error the unary call would end with, goes into the
queue. Once the client watches, a pump thread waits on the subscription and puts its events in the
queue. Commands run in the order they arrive, so a watch is in place before the next command's write.

Flow control: the queue holds `OUTBOX_SIZE` responses. When the client stops reading, the pool
thread waits on HTTP/2 flow control, the queue fills, the reader stops taking commands (so the
client's own sends stop at its flow-control window), and the pump stops taking events, so the
subscription's bounded buffer (EVENTS_BUFFER) overflows: the stream then ends with
RESOURCE_EXHAUSTED (`slow_consumer`). Memory stays bounded either way.

A command's error never ends the stream. The stream ends when the client cancels or its deadline
passes (quietly), when the client half-closes and is not watching (OK, after the last result), or
with the status of what ended the subscription: UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNAVAILABLE.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import grpc
from django.conf import settings
from django.db import close_old_connections, connection

from api_grpc.commands import create, delete, update
from api_grpc.converters import Refused, event_to_proto, task_to_proto, watch_arguments_from_proto
from api_grpc.errors import describe
from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.interceptors import check_rate_limit
from api_grpc.streams import OpenStreams, release_connection, wait_time
from core.auth import Credential
from core.db import time_budget
from core.errors import InvalidInput, NotAuthenticated, TimeBudgetExceeded
from core.types import Actor
from tasks.events import Subscription, subscribe

METHOD = "/tasks.v1.TaskService/SyncTasks"

# Responses waiting to be sent on one stream; past it, commands and events wait (see above).
OUTBOX_SIZE = 64


class Outbox:
    """The responses waiting to be sent, at most `size`, and what ends the stream early."""

    def __init__(self, size: int) -> None:
        self._items: deque[pb.SyncTasksResponse] = deque()
        self._size = size
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False

    def put(self, item: pb.SyncTasksResponse) -> bool:
        """Queue `item`, waiting while the queue is full; False once the stream is over."""
        with self._changed:
            while len(self._items) >= self._size and not self._over():
                self._changed.wait()
            if self._over():
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self, timeout: float) -> pb.SyncTasksResponse | None:
        """The next response, None if none came within `timeout`; raises the error that ends the
        stream, before anything still queued."""
        with self._changed:
            if not self._items and not self._over():
                self._changed.wait(timeout)
            if self._error is not None:
                raise self._error
            if not self._items:
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def fail(self, error: BaseException) -> None:
        """End the stream with `error` (the first one counts)."""
        with self._changed:
            if self._error is None:
                self._error = error
            self._changed.notify_all()

    def close(self) -> None:
        """The stream is over: wake and release every thread waiting to put."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def is_open(self) -> bool:
        with self._changed:
            return not self._over()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _over(self) -> bool:
        return self._closed or self._error is not None


class SyncSession:
    """One SyncTasks stream of one caller."""

    def __init__(
        self,
        *,
        context: grpc.ServicerContext,
        streams: OpenStreams,
        actor: Actor,
        credential: Credential,
        address: str,
    ) -> None:
        self.context = context
        self.streams = streams
        self.actor = actor
        self.credential = credential
        self.address = address  # the client's, for its rate limit (interceptors.client_address)
        self.outbox = Outbox(OUTBOX_SIZE)
        self.subscription: Subscription | None = None
        self.reading_done = threading.Event()
        self.rechecked = time.monotonic()
        self._checking = threading.Lock()  # the reader and the sender both check the credential

    def run(self, requests: Iterator[pb.SyncTasksRequest | Refused]) -> Iterator[pb.SyncTasksResponse]:
        """The responses of the stream, on the call's pool thread."""
        self._start("grpc-sync-reader", self._read, requests)
        release_connection()  # this thread only sends
        try:
            while self.context.is_active():
                self.streams.check()
                try:
                    # Here too, not only when a command comes: an idle stream ends when its credential does.
                    wait = min(wait_time(self.context), self._check_credential())
                except NotAuthenticated as exc:
                    self.outbox.fail(exc)
                    wait = 0
                finally:
                    release_connection()  # a recheck may have queried; this thread only sends
                item = self.outbox.get(wait)
                if item is not None:
                    yield item
                elif self.reading_done.is_set() and self.subscription is None:
                    return
        finally:
            self.outbox.close()

    def _start(self, name: str, target: Any, *args: Any) -> None:
        # The threads see the call's context: its request id (log lines), span and call state.
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(target, *args), name=name, daemon=True).start()

    def _read(self, requests: Iterator[pb.SyncTasksRequest | Refused]) -> None:
        try:
            for request in requests:
                self._check_credential()
                if not self.outbox.put(self.handle(request)):
                    return
        except grpc.RpcError:
            pass  # the call ended (cancelled, deadline, or ended by the server): nothing left to answer
        except Exception as exc:  # NotAuthenticated, else a bug of ours (INTERNAL, logged by describe())
            self.outbox.fail(exc)
        finally:
            self.reading_done.set()
            self.outbox.wake()
            connection.close()

    def _check_credential(self) -> float:
        """Raise NotAuthenticated once the stream's credential has expired, or, checked every
        EVENTS_REAUTH_INTERVAL seconds as a subscription does, was revoked or no longer gives the
        access the stream was opened with (a manager demoted, an editor made a viewer): its commands
        run as the actor it was opened with, so the stream ends rather than run them with rights the
        credential lost. Else the seconds until the next check is due."""
        with self._checking:
            expires_at = self.credential.expires_at
            if expires_at is not None and expires_at <= time.time():
                raise NotAuthenticated("The credential has expired. The stream is closed.")
            now = time.monotonic()
            if now - self.rechecked >= settings.EVENTS_REAUTH_INTERVAL:
                self.rechecked = now
                try:
                    # Its commands write, as the actor the stream was opened with.
                    self.credential.recheck(self.actor, writes=True)
                except NotAuthenticated as exc:
                    raise NotAuthenticated(f"{exc.message} The stream is closed.") from None
            wait = settings.EVENTS_REAUTH_INTERVAL - (now - self.rechecked)
            if expires_at is not None:
                wait = min(wait, expires_at - time.time())
            return max(wait, 0.01)

    def handle(self, request: pb.SyncTasksRequest | Refused) -> pb.SyncTasksResponse:
        """The response to one message: its command's result, or the error its unary call would end with."""
        if isinstance(request, Refused):
            return self._error("", request.error)
        try:
            if request.HasField("watch"):
                self._watch(request.watch)
            command = request.WhichOneof("command")
            if command is None:
                if self.subscription is None or not request.HasField("watch"):
                    raise InvalidInput.for_fields({"command": ["Send a command (create, update, delete) or a watch."]})
                return pb.SyncTasksResponse(
                    result=pb.SyncTasksResult(request_id=request.request_id, watching_after=self.subscription.last_id)
                )
            if request.idempotency_key and command != "create":
                raise InvalidInput.for_fields({"idempotency_key": ["Only a create takes an idempotency key."]})
            return pb.SyncTasksResponse(result=self._run(command, request))
        except Exception as exc:
            return self._error(request.request_id, exc)

    def _run(self, command: str, request: pb.SyncTasksRequest) -> pb.SyncTasksResult:
        """One command, as its unary call runs it: the rate limit, then the service within the deadline."""
        remaining = self.context.time_remaining()
        if remaining is not None and remaining <= 0.001:
            raise TimeBudgetExceeded("The deadline passed before the work started.")
        close_old_connections()
        try:
            with time_budget(remaining, wanted=self.context.is_active):
                check_rate_limit(self.actor, self.address)
                result = pb.SyncTasksResult(request_id=request.request_id)
                if command == "create":
                    created = create(self.actor, request.create, request.idempotency_key or None)
                    result.task.CopyFrom(task_to_proto(created.task))
                    result.idempotent_replayed = created.replayed
                elif command == "update":
                    result.task.CopyFrom(task_to_proto(update(self.actor, request.update)))
                else:
                    delete(self.actor, request.delete)
                    result.deleted.SetInParent()
                return result
        finally:
            # Not kept for the next command, which may come hours later (streams.release_connection).
            release_connection()

    def _watch(self, request: pb.WatchTasksRequest) -> None:
        if self.subscription is not None:
            raise InvalidInput.for_fields({"watch": ["This stream is already watching."]})
        self.subscription = subscribe(
            actor=self.actor, credential=self.credential, protocol="grpc", **watch_arguments_from_proto(request)
        )
        self._start("grpc-sync-events", self._pump, self.subscription)

    def _pump(self, subscription: Subscription) -> None:
        """Move the subscription's events into the outbox until the stream is over."""
        try:
            while self.context.is_active() and self.outbox.is_open():
                release_connection()
                for event in subscription.next(wait_time(self.context)):
                    if not self.outbox.put(pb.SyncTasksResponse(event=event_to_proto(event))):
                        return
        except Exception as exc:  # what ends the subscription ends the stream
            self.outbox.fail(exc)
        finally:
            subscription.close()
            connection.close()

    def _error(self, request_id: str, exc: BaseException) -> pb.SyncTasksResponse:
        failure = describe(exc, METHOD)
        return pb.SyncTasksResponse(
            error=pb.SyncTasksError(
                request_id=request_id,
                code=failure.status.value[0],
                message=failure.message,
                details=dict(failure.trailers),
            )
        )
