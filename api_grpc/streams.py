"""What the streaming calls (WatchTasks, SyncTasks) share: the server's stream slots, and the loop that
reads a subscription while the call lives.

The sync server runs every call on a pool thread for as long as it lasts, so an open stream holds a
thread. Streams run on a pool of their own (`OpenStreams.pool`, which the interceptor names as its
stream handlers' `experimental_thread_pool`, grpcio's per-method pool), and unary calls on the
server's pool of GRPC_WORKERS threads (`api_grpc.server.build_server`): neither kind ever takes the
other's threads. `OpenStreams` caps the streams at GRPC_MAX_STREAMS; its pool has one thread more, on
which a stream over the cap is refused with RESOURCE_EXHAUSTED before it authenticates or subscribes.
`close()` (the server's shutdown) ends every open stream with UNAVAILABLE within `POLL` seconds, so
that clients reconnect with their last event id instead of being cut off by the grace period.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
from django.db import connection

from core.errors import ServiceUnavailable, TooManyStreams
from tasks.events import Subscription, TaskEvent

# Seconds a stream waits for events before it looks again at its call (cancelled? deadline passed?)
# and at the server (shutting down?): the longest a stream outlives its call or the server's shutdown.
POLL = 0.5

SHUTTING_DOWN = "The server is shutting down: reconnect with the last event id you received."


class OpenStreams:
    """The streams in progress in one server, at most `limit` at a time, and the threads they run on:
    `limit` threads, and one more to refuse the streams over the limit at once (threads are started
    as streams need them)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pool = futures.ThreadPoolExecutor(max_workers=limit + 1, thread_name_prefix="grpc-stream")
        self._count = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def acquire(self) -> None:
        """Take a slot; raises TooManyStreams when none is free, and ServiceUnavailable once the
        server is shutting down. `release()` it when the stream is over, logged included."""
        self.check()
        with self._lock:
            if self._count >= self.limit:
                raise TooManyStreams("Too many open streams on this server; try again later.")
            self._count += 1

    def release(self) -> None:
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        return self._count

    def close(self) -> None:
        """Refuse new streams and end the open ones (each within POLL seconds)."""
        self._closing.set()

    def check(self) -> None:
        """Raise ServiceUnavailable once the server is shutting down."""
        if self._closing.is_set():
            raise ServiceUnavailable(SHUTTING_DOWN)


def wait_time(context: grpc.ServicerContext) -> float:
    """How long the next wait for events may last: POLL, or less when the deadline is nearer."""
    remaining = context.time_remaining()
    return POLL if remaining is None else max(0.0, min(POLL, remaining))


def release_connection() -> None:
    """Close this thread's database connection: a stream waits for hours, and would otherwise keep
    a database connection per open stream (the subscription opens one again, briefly, when it re-checks
    an API key)."""
    if not connection.in_atomic_block:
        connection.close()


def events_of(subscription: Subscription, context: grpc.ServicerContext, streams: OpenStreams) -> Iterator[TaskEvent]:
    """The subscription's events, batch by batch, until the call ends (the client cancelled, the
    deadline passed: the iterator just stops) or the subscription ends it (its error propagates:
    expired credential, slow consumer, shutdown)."""
    while context.is_active():
        streams.check()
        release_connection()
        yield from subscription.next(wait_time(context))
