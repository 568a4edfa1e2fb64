"""Live events over gRPC: WatchTasks and SyncTasks through a real server and real channels.

The writes go through the domain services in the test and through unary gRPC calls; on the embedded
default the event log is in this process, which the server shares; with REDIS_URL it is the Redis
Stream. Every stream waits for its response headers (`initial_metadata()`): WatchTasks sends them
once it is subscribed, so a write after that must reach it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from prometheus_client import REGISTRY

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.server import Running
from api_rest.auth import TokenObtainSerializer
from tasks import events
from tasks.models import Task
from tasks.services import task_create, task_delete, task_update
from tests.api_grpc.helpers import TIMEOUT, Metadata, api_key, bearer, ok, wait_until
from tests.factories import actor_of

_END = object()


class Stream:
    """A streaming call, read on a thread into a queue: `take(n)` the next n responses, `ended()`
    the error (a grpc.RpcError, also a Call) or None once the stream is over."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.items: queue.Queue[Any] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self._done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for item in self.call:
                self.items.put(item)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self._done.set()
            self.items.put(_END)

    def take(self, count: int, timeout: float = TIMEOUT) -> list[Any]:
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            item = self.items.get(timeout=max(0.0, deadline - time.monotonic()))
            assert item is not _END, (got, self.error and (self.error.code(), self.error.details()))
            got.append(item)
        return got

    def nothing_more(self, wait: float = 0.5) -> None:
        with pytest.raises(queue.Empty):
            item = self.items.get(timeout=wait)
            pytest.fail(f"unexpected {item}")

    def ended(self, timeout: float = TIMEOUT) -> grpc.RpcError | None:
        assert self._done.wait(timeout), "the stream did not end"
        return self.error


@pytest.fixture
def watch(stub: pb_grpc.TaskServiceStub) -> Iterator[Callable[..., Stream]]:
    """`watch(metadata, **request_fields)` → a subscribed WatchTasks stream; cancelled after the test."""
    opened: list[Stream] = []

    def open_(metadata: Metadata, *, using: pb_grpc.TaskServiceStub | None = None, **fields: Any) -> Stream:
        call = (using or stub).WatchTasks(pb.WatchTasksRequest(**fields), metadata=metadata, timeout=60)
        call.initial_metadata()  # subscribed
        stream = Stream(call)
        opened.append(stream)
        return stream

    yield open_
    for stream in opened:
        stream.call.cancel()


def short_lived_token(user: Any, *, seconds: float) -> str:
    """A real access token of `user` (with the role claims of a login) that expires in `seconds`."""
    token = TokenObtainSerializer.get_token(user).access_token
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


def event_types(items: list[pb.TaskEvent]) -> list[int]:
    return [item.type for item in items]


def no_stream_left(server: Running) -> None:
    assert wait_until(lambda: server.streams.count == 0 and events.open_streams() == 0, timeout=5)


# -- WatchTasks ------------------------------------------------------------------------------------------


def test_watch_gets_every_change_made_through_services_and_unary_calls(
    stub: pb_grpc.TaskServiceStub, watch: Callable[..., Stream], user: Any, as_user: Metadata
) -> None:
    stream = watch(as_user)
    actor = actor_of(user)

    created = task_create(actor=actor, data={"title": "by the service", "tags": ["x"]})
    over_grpc = ok(stub.CreateTask, pb.CreateTaskRequest(title="over gRPC"), as_user).task
    ok(
        stub.UpdateTask,
        pb.UpdateTaskRequest(id=over_grpc.id, task=pb.Task(title="renamed"), update_mask=FieldMask(paths=["title"])),
        as_user,
    )
    task_update(actor=actor, task_id=created.pk, changes={"status": "completed"})
    ok(stub.DeleteTask, pb.DeleteTaskRequest(id=over_grpc.id), as_user)
    task_delete(actor=actor, task_id=created.pk)

    got = stream.take(6)
    assert event_types(got) == [
        pb.TASK_EVENT_TYPE_CREATED,
        pb.TASK_EVENT_TYPE_CREATED,
        pb.TASK_EVENT_TYPE_UPDATED,
        pb.TASK_EVENT_TYPE_COMPLETED,
        pb.TASK_EVENT_TYPE_DELETED,
        pb.TASK_EVENT_TYPE_DELETED,
    ]
    a, b = str(created.pk), over_grpc.id
    assert [e.task_id for e in got] == [a, b, b, a, b, a]
    assert [e.version for e in got] == [1, 1, 2, 2, 2, 2]
    assert all(e.owner_id == user.pk and e.HasField("occurred_at") for e in got)
    assert got[0].task.title == "by the service" and list(got[0].task.tags) == ["x"]
    assert got[2].task.title == "renamed" and got[2].task.version == 2
    assert got[3].task.status == pb.STATUS_COMPLETED and got[3].task.completed
    assert not got[4].HasField("task") and not got[5].HasField("task")
    ids = [e.id for e in got]
    assert len(set(ids)) == 6
    stream.nothing_more()


def test_a_user_never_gets_anothers_events_and_a_manager_gets_both(
    watch: Callable[..., Stream], user: Any, other_user: Any, manager: Any
) -> None:
    mine, theirs, everything = watch(bearer(user)), watch(bearer(other_user)), watch(api_key(manager))

    task_create(actor=actor_of(user), data={"title": "a's"})
    task_create(actor=actor_of(other_user), data={"title": "b's"})
    task_create(actor=actor_of(user), data={"title": "a's again"})

    assert [e.task.title for e in mine.take(2)] == ["a's", "a's again"]
    assert [e.task.title for e in theirs.take(1)] == ["b's"]
    assert [e.task.title for e in everything.take(3)] == ["a's", "b's", "a's again"]
    for stream in (mine, theirs, everything):
        stream.nothing_more()


def test_filters_are_the_lists(watch: Callable[..., Stream], user: Any, manager: Any) -> None:
    actor = actor_of(user)
    high = watch(bearer(user), priority=pb.PRIORITY_HIGH)
    done = watch(bearer(user), status=pb.STATUS_COMPLETED)
    tagged = watch(bearer(user), tag="Work")
    only_mine = watch(bearer(manager), only_mine=True)

    task_create(actor=actor, data={"title": "low", "priority": "low"})
    task = task_create(actor=actor, data={"title": "high", "priority": "high", "tags": ["work"]})
    task_update(actor=actor, task_id=task.pk, changes={"status": "completed"})
    task_create(actor=actor_of(manager), data={"title": "the manager's"})

    assert [(e.task.title, e.type) for e in high.take(2)] == [
        ("high", pb.TASK_EVENT_TYPE_CREATED),
        ("high", pb.TASK_EVENT_TYPE_COMPLETED),
    ]
    assert [e.type for e in done.take(1)] == [pb.TASK_EVENT_TYPE_COMPLETED]
    assert [e.task.title for e in tagged.take(2)] == ["high", "high"]
    assert [e.task.title for e in only_mine.take(1)] == ["the manager's"]
    for stream in (high, done, tagged, only_mine):
        stream.nothing_more()


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"status": 99}, "status"),
        ({"priority": 42}, "priority"),
        ({"tag": "x" * 51}, "tag"),
        ({"after": "not-an-id"}, "after"),
        ({"after": "\uff11-\uff10"}, "after"),  # full-width digits: an id is ASCII
    ],
)
def test_bad_filters_and_positions_are_invalid_argument(
    stub: pb_grpc.TaskServiceStub, as_user: Metadata, request_fields: dict[str, Any], field: str
) -> None:
    call = stub.WatchTasks(pb.WatchTasksRequest(**request_fields), metadata=as_user, timeout=TIMEOUT)
    error = Stream(call).ended()

    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    found = dict(error.trailing_metadata() or ())
    assert found["taskhub-error-code"] == "invalid_input"
    assert field in found["taskhub-field-errors"]


def test_a_stream_needs_credentials(stub: pb_grpc.TaskServiceStub, grpc_server: Running) -> None:
    for metadata in ((), (("authorization", "Bearer nonsense"),)):
        error = Stream(stub.WatchTasks(pb.WatchTasksRequest(), metadata=metadata, timeout=TIMEOUT)).ended()
        assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert dict(error.trailing_metadata() or ())["taskhub-error-code"] == "not_authenticated"
    no_stream_left(grpc_server)


def test_resuming_after_the_channel_closed_delivers_every_missed_event_once_in_order(
    open_channel: Callable[..., grpc.Channel], user: Any, as_user: Metadata
) -> None:
    actor = actor_of(user)
    first_channel = open_channel()
    call = pb_grpc.TaskServiceStub(first_channel).WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=60)
    call.initial_metadata()
    stream = Stream(call)
    task = task_create(actor=actor, data={"title": "seen"})
    [seen] = stream.take(1)
    first_channel.close()  # the connection drops
    assert stream.ended() is not None

    for title in ("missed 1", "missed 2", "missed 3"):
        task_update(actor=actor, task_id=task.pk, changes={"title": title})
    call = pb_grpc.TaskServiceStub(open_channel()).WatchTasks(
        pb.WatchTasksRequest(after=seen.id), metadata=as_user, timeout=60
    )
    resumed = Stream(call)
    got = resumed.take(3)
    task_update(actor=actor, task_id=task.pk, changes={"title": "live"})
    got += resumed.take(1)

    assert [e.task.title for e in got] == ["missed 1", "missed 2", "missed 3", "live"]
    assert [e.version for e in got] == [2, 3, 4, 5]
    resumed.nothing_more()
    call.cancel()


def test_resuming_from_an_id_past_the_retention_is_a_gap_then_the_stream_goes_on(
    watch: Callable[..., Stream], user: Any, as_user: Metadata, settings: Any
) -> None:
    settings.EVENTS_RETENTION = 3
    settings.EVENTS_STREAM_KEY = f"test:events:grpc:{time.time_ns()}"
    actor = actor_of(user)
    first = watch(as_user)
    task = task_create(actor=actor, data={"title": "0"})
    [oldest] = first.take(1)
    for n in range(1, 200):  # Redis trims whole nodes of ~100 entries with MAXLEN ~
        task_update(actor=actor, task_id=task.pk, changes={"title": str(n)})

    resumed = watch(as_user, after=oldest.id)
    [gap] = resumed.take(1)
    assert gap.type == pb.TASK_EVENT_TYPE_GAP
    assert not gap.HasField("task") and not gap.HasField("owner_id") and not gap.HasField("version")
    assert gap.task_id == "" and gap.id
    task_update(actor=actor, task_id=task.pk, changes={"title": "after the gap"})
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        [event] = resumed.take(1)
        if event.type != pb.TASK_EVENT_TYPE_GAP and event.task.title == "after the gap":
            break
    else:
        pytest.fail("the stream did not go on after the gap")


def test_the_deadline_and_a_cancel_end_the_stream_quietly(
    stub: pb_grpc.TaskServiceStub, grpc_server: Running, user: Any, as_user: Metadata, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    short = Stream(stub.WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=1))
    error = short.ended()
    assert error is not None and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    call = stub.WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=60)
    call.initial_metadata()
    cancelled = Stream(call)
    call.cancel()
    error = cancelled.ended()
    assert error is not None and error.code() == grpc.StatusCode.CANCELLED

    no_stream_left(grpc_server)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

    # The access log says how each ended (a previous test's streams may still be logging: by user).
    def access() -> list[str]:
        return sorted(
            r.getMessage() for r in caplog.records if r.name == "taskhub.access" and getattr(r, "user_id", 0) == user.pk
        )

    assert wait_until(lambda: len(access()) == 2, timeout=5)
    assert access() == [
        "/tasks.v1.TaskService/WatchTasks CANCELLED",
        "/tasks.v1.TaskService/WatchTasks DEADLINE_EXCEEDED",
    ]


def test_an_expired_token_ends_the_stream_unauthenticated(
    watch: Callable[..., Stream], grpc_server: Running, user: Any
) -> None:
    token = short_lived_token(user, seconds=2)
    stream = watch((("authorization", f"Bearer {token}"),))
    task_create(actor=actor_of(user), data={"title": "while valid"})
    assert [e.task.title for e in stream.take(1)] == ["while valid"]

    error = stream.ended(timeout=10)
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (error.details() or "")
    assert dict(error.trailing_metadata() or ())["taskhub-error-code"] == "not_authenticated"
    no_stream_left(grpc_server)


def test_a_client_that_stops_reading_is_dropped(
    open_channel: Callable[..., grpc.Channel], grpc_server: Running, user: Any, as_user: Metadata, settings: Any
) -> None:
    settings.EVENTS_BUFFER = 5
    # Without BDP probing the client's HTTP/2 window stays at 64 KiB, so a few large events fill it.
    stub = pb_grpc.TaskServiceStub(open_channel(options=[("grpc.http2.bdp_probe", 0)]))
    call = stub.WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=60)
    call.initial_metadata()
    actor = actor_of(user)
    # The events fill the HTTP/2 window, which the client does not open again while it does not
    # read; then the server waits, and the subscription's buffer overflows.
    for n in range(80):
        task_create(actor=actor, data={"title": f"{n}", "description": "x" * 10_000})

    received = 0
    with pytest.raises(grpc.RpcError) as info:
        for _ in call:
            received += 1
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
    assert dict(info.value.trailing_metadata() or ())["taskhub-error-code"] == "slow_consumer"
    assert received < 80
    no_stream_left(grpc_server)


def test_streams_over_the_servers_limit_are_refused_and_unary_calls_still_run(
    start_server: Callable[..., Running], open_channel: Callable[..., grpc.Channel], user: Any, as_user: Metadata
) -> None:
    before = set(threading.enumerate())
    server = start_server(workers=2, max_streams=3)
    stub = pb_grpc.TaskServiceStub(open_channel(server.port))
    calls = []
    for _ in range(2):
        call = stub.WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=60)
        call.initial_metadata()
        calls.append(call)
    commands = Commands()
    syncing = Stream(stub.SyncTasks(iter(commands), metadata=as_user, timeout=60))
    commands.send(request_id="w", watch=pb.WatchTasksRequest())
    syncing.take(1)
    calls.append(syncing.call)

    error = Stream(stub.WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=TIMEOUT)).ended()
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(error.trailing_metadata() or ())["taskhub-error-code"] == "too_many_streams"

    # Both unary workers are free for unary calls, at once.
    answers: list[Any] = []
    threads = [
        threading.Thread(target=lambda: answers.append(ok(stub.ListTasks, pb.ListTasksRequest(), as_user, timeout=3)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2
    # The streams ran on threads of their own: three held, and the one that refused the fourth.
    started = sorted(thread.name for thread in set(threading.enumerate()) - before)
    assert [name for name in started if name.startswith("grpc-stream_")] == [f"grpc-stream_{n}" for n in range(4)]
    assert 1 <= len([name for name in started if name.startswith("grpc_")]) <= 2

    calls[0].cancel()
    assert wait_until(lambda: server.streams.count == 2, timeout=5)
    again = stub.WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=60)
    again.initial_metadata()
    for call in [*calls[1:3], again]:
        call.cancel()


def test_shutdown_ends_open_streams_unavailable_at_once(
    grpc_server: Running, stub: pb_grpc.TaskServiceStub, as_user: Metadata
) -> None:
    watching = Stream(stub.WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=60))
    watching.call.initial_metadata()
    syncing = Stream(
        stub.SyncTasks(
            iter([pb.SyncTasksRequest(request_id="w", watch=pb.WatchTasksRequest())]), metadata=as_user, timeout=60
        )
    )
    syncing.take(1)

    started = time.monotonic()
    stopped = grpc_server.shutdown(grace=30)
    for stream in (watching, syncing):
        error = stream.ended(timeout=5)
        assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert "reconnect with the last event id" in (error.details() or "")
    assert stopped.wait(5)
    assert time.monotonic() - started < 5  # not the grace period


# -- SyncTasks -------------------------------------------------------------------------------------------


class Commands:
    """The request side of a SyncTasks stream: `send(request)` queues a message; `close()` half-closes."""

    def __init__(self) -> None:
        self._queue: queue.Queue[pb.SyncTasksRequest | None] = queue.Queue()

    def send(self, **fields: Any) -> None:
        self._queue.put(pb.SyncTasksRequest(**fields))

    def close(self) -> None:
        self._queue.put(None)

    def __iter__(self) -> Iterator[pb.SyncTasksRequest]:
        while (request := self._queue.get()) is not None:
            yield request


@pytest.fixture
def sync(stub: pb_grpc.TaskServiceStub) -> Iterator[Callable[[Metadata], tuple[Commands, Stream]]]:
    opened: list[Stream] = []

    def open_(metadata: Metadata) -> tuple[Commands, Stream]:
        commands = Commands()
        stream = Stream(stub.SyncTasks(iter(commands), metadata=metadata, timeout=60))
        opened.append(stream)
        return commands, stream

    yield open_
    for stream in opened:
        stream.call.cancel()


def test_sync_answers_each_command_and_interleaves_the_events(
    sync: Callable[[Metadata], tuple[Commands, Stream]], user: Any, as_user: Metadata
) -> None:
    commands, stream = sync(as_user)
    commands.send(request_id="w", watch=pb.WatchTasksRequest())
    [watching] = stream.take(1)
    assert watching.result.request_id == "w" and watching.result.watching_after

    commands.send(request_id="c1", create=pb.CreateTaskRequest(title="one"))
    got = stream.take(2)
    result = next(r.result for r in got if r.WhichOneof("kind") == "result")
    event = next(r.event for r in got if r.WhichOneof("kind") == "event")
    assert result.request_id == "c1" and result.task.title == "one" and not result.idempotent_replayed
    assert event.type == pb.TASK_EVENT_TYPE_CREATED and event.task_id == result.task.id

    task_id = result.task.id
    commands.send(
        request_id="u1",
        update=pb.UpdateTaskRequest(
            id=task_id, task=pb.Task(status=pb.STATUS_COMPLETED), update_mask=FieldMask(paths=["status"])
        ),
    )
    commands.send(request_id="d1", delete=pb.DeleteTaskRequest(id=task_id, expected_version=2))
    got = stream.take(4)
    task_create(actor=actor_of(user), data={"title": "from elsewhere"})
    got += stream.take(1)
    results = {r.result.request_id: r.result for r in got if r.WhichOneof("kind") == "result"}
    assert results["u1"].task.status == pb.STATUS_COMPLETED and results["u1"].task.version == 2
    assert results["d1"].WhichOneof("outcome") == "deleted"
    assert [(r.event.type, r.event.task.title) for r in got if r.WhichOneof("kind") == "event"] == [
        (pb.TASK_EVENT_TYPE_COMPLETED, "one"),
        (pb.TASK_EVENT_TYPE_DELETED, ""),
        (pb.TASK_EVENT_TYPE_CREATED, "from elsewhere"),
    ]
    commands.close()  # still watching: the stream goes on until the client cancels
    stream.nothing_more()


def test_a_bad_command_gets_its_error_and_the_stream_goes_on(
    sync: Callable[[Metadata], tuple[Commands, Stream]], as_user: Metadata
) -> None:
    commands, stream = sync(as_user)
    commands.send(request_id="nf", delete=pb.DeleteTaskRequest(id="6f1c2a5e-0000-4000-8000-000000000404"))
    commands.send(request_id="bad", create=pb.CreateTaskRequest(title=" "))
    commands.send(request_id="key", update=pb.UpdateTaskRequest(id="x"), idempotency_key="k")
    commands.send(request_id="none")
    commands.send(request_id="ok", create=pb.CreateTaskRequest(title="fine"))
    commands.close()

    got = stream.take(5)
    assert stream.ended() is None  # not watching: OK after the last answer
    errors = {r.error.request_id: r.error for r in got if r.WhichOneof("kind") == "error"}
    assert errors["nf"].code == grpc.StatusCode.NOT_FOUND.value[0]
    assert errors["nf"].details["taskhub-error-code"] == "not_found"
    assert errors["bad"].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "title" in errors["bad"].details["taskhub-field-errors"]
    assert "idempotency_key" in errors["key"].details["taskhub-field-errors"]
    assert "command" in errors["none"].details["taskhub-field-errors"]
    assert got[-1].result.request_id == "ok" and got[-1].result.task.title == "fine"


def test_an_idempotency_key_replays_the_first_create(
    sync: Callable[[Metadata], tuple[Commands, Stream]], as_user: Metadata, stub: pb_grpc.TaskServiceStub
) -> None:
    commands, stream = sync(as_user)
    commands.send(
        request_id="w", watch=pb.WatchTasksRequest(), create=pb.CreateTaskRequest(title="once"), idempotency_key="k-1"
    )
    commands.send(request_id="again", create=pb.CreateTaskRequest(title="once"), idempotency_key="k-1")
    commands.send(request_id="other", create=pb.CreateTaskRequest(title="twice"), idempotency_key="k-1")
    got = stream.take(4)

    results = {r.result.request_id: r.result for r in got if r.WhichOneof("kind") == "result"}
    errors = {r.error.request_id: r.error for r in got if r.WhichOneof("kind") == "error"}
    assert not results["w"].idempotent_replayed and results["again"].idempotent_replayed
    assert results["again"].task.id == results["w"].task.id
    assert errors["other"].details["taskhub-error-code"] == "idempotency_key_reused"
    assert [r.event.type for r in got if r.WhichOneof("kind") == "event"] == [pb.TASK_EVENT_TYPE_CREATED]
    stream.nothing_more()
    assert len(ok(stub.ListTasks, pb.ListTasksRequest(), as_user).tasks) == 1


def test_each_command_counts_against_the_rate_limit(
    sync: Callable[[Metadata], tuple[Commands, Stream]], as_user: Metadata, rate_limits: Callable[..., None]
) -> None:
    rate_limits(user=["3/h"])
    commands, stream = sync(as_user)  # opening the stream is one call
    for n in range(3):
        commands.send(request_id=f"c{n}", create=pb.CreateTaskRequest(title=f"{n}"))
    got = stream.take(3)

    assert [r.WhichOneof("kind") for r in got] == ["result", "result", "error"]
    assert got[2].error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert got[2].error.details["taskhub-error-code"] == "rate_limited" and "retry-after" in got[2].error.details
    commands.send(request_id="w", watch=pb.WatchTasksRequest())  # the stream goes on
    assert stream.take(1)[0].result.watching_after


def test_a_second_watch_is_refused_and_the_first_goes_on(
    sync: Callable[[Metadata], tuple[Commands, Stream]], user: Any, as_user: Metadata
) -> None:
    commands, stream = sync(as_user)
    commands.send(request_id="w1", watch=pb.WatchTasksRequest(status=pb.STATUS_TODO))
    commands.send(request_id="w2", watch=pb.WatchTasksRequest())
    first, second = stream.take(2)
    assert first.result.request_id == "w1"
    assert second.error.request_id == "w2" and "watch" in second.error.details["taskhub-field-errors"]

    task_create(actor=actor_of(user), data={"title": "todo"})
    assert stream.take(1)[0].event.task.title == "todo"


def test_a_client_that_does_not_read_stops_its_commands_being_taken(
    open_channel: Callable[..., grpc.Channel], grpc_server: Running, as_user: Metadata
) -> None:
    stub = pb_grpc.TaskServiceStub(open_channel(options=[("grpc.http2.bdp_probe", 0)]))
    commands = Commands()
    call = stub.SyncTasks(iter(commands), metadata=as_user, timeout=60)
    sent = 150
    for n in range(sent):  # answers of ~10 KB: a few fill the client's window, then the server's queue fills
        commands.send(request_id=f"c{n}", create=pb.CreateTaskRequest(title=f"{n}", description="x" * 10_000))
    commands.close()

    def created() -> int:
        return Task.objects.count()

    previous = -1
    while (now := created()) != previous:  # until it stops growing
        previous = now
        time.sleep(1)
    assert 0 < previous < sent

    answers = [response.result.request_id for response in call]  # reading lets the rest through
    assert answers == [f"c{n}" for n in range(sent)]
    assert created() == sent


def test_sync_ends_unauthenticated_once_its_token_expired(
    sync: Callable[[Metadata], tuple[Commands, Stream]], user: Any
) -> None:
    token = short_lived_token(user, seconds=2)
    commands, stream = sync((("authorization", f"Bearer {token}"),))
    commands.send(request_id="before", create=pb.CreateTaskRequest(title="while valid"))
    assert stream.take(1)[0].result.task.title == "while valid"

    time.sleep(2.1)
    commands.send(request_id="after", create=pb.CreateTaskRequest(title="too late"))
    error = stream.ended()
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (error.details() or "")
    assert list(Task.objects.values_list("title", flat=True)) == ["while valid"]


def test_streams_are_counted_under_the_grpc_protocol(
    stub: pb_grpc.TaskServiceStub, grpc_server: Running, user: Any, as_user: Metadata
) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"protocol": "grpc", **labels}) or 0.0

    active, delivered = sample("api_event_streams_active"), sample("api_events_delivered_total")
    closed = sample("api_event_streams_ended_total", reason="client_closed")
    call = stub.WatchTasks(pb.WatchTasksRequest(), metadata=as_user, timeout=60)
    call.initial_metadata()
    assert sample("api_event_streams_active") == active + 1

    task_create(actor=actor_of(user), data={"title": "counted"})
    assert next(call).task.title == "counted"
    call.cancel()
    no_stream_left(grpc_server)
    assert sample("api_event_streams_active") == active
    assert sample("api_events_delivered_total") == delivered + 1
    assert sample("api_event_streams_ended_total", reason="client_closed") == closed + 1


def test_a_watch_from_an_id_in_other_digits_is_answered_and_the_stream_goes_on(
    sync: Callable[[Metadata], tuple[Commands, Stream]], as_user: Metadata
) -> None:
    commands, stream = sync(as_user)
    commands.send(request_id="w", watch=pb.WatchTasksRequest(after="\uff11-\uff10"))
    commands.send(request_id="c", create=pb.CreateTaskRequest(title="after the refused watch"))
    refused, created = stream.take(2)
    assert refused.error.request_id == "w" and refused.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert refused.error.details["taskhub-error-code"] == "invalid_input"
    assert created.result.request_id == "c" and created.result.task.title == "after the refused watch"


def test_sync_ends_unauthenticated_once_its_manager_is_demoted(
    sync: Callable[[Metadata], tuple[Commands, Stream]], manager: Any, other_user: Any, settings: Any
) -> None:
    """Its commands ran with the rights the stream was opened with: an update of another user's task
    that the unary call refuses now must not run over the stream either."""
    from django.contrib.auth.models import Group
    from django.core.cache import cache

    settings.EVENTS_REAUTH_INTERVAL = 0.2
    task = task_create(actor=actor_of(other_user), data={"title": "theirs"})
    commands, stream = sync(api_key(manager))
    commands.send(request_id="before", update=_retitle(task, "edited by a manager"))
    assert stream.take(1)[0].result.task.title == "edited by a manager"

    manager.groups.remove(Group.objects.get(name="manager"))
    cache.clear()  # the API key's cached entry, as its TTL would
    time.sleep(0.3)
    commands.send(request_id="after", update=_retitle(task, "edited by a former manager"))
    error = stream.ended()
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no longer gives" in (error.details() or "")
    task.refresh_from_db()
    assert task.title == "edited by a manager"


def _retitle(task: Task, title: str) -> pb.UpdateTaskRequest:
    return pb.UpdateTaskRequest(id=str(task.pk), task=pb.Task(title=title), update_mask=FieldMask(paths=["title"]))


def test_an_idle_sync_stream_ends_unauthenticated_when_its_token_expires(
    sync: Callable[[Metadata], tuple[Commands, Stream]], user: Any
) -> None:
    token = short_lived_token(user, seconds=1.5)
    commands, stream = sync((("authorization", f"Bearer {token}"),))
    commands.send(request_id="c", create=pb.CreateTaskRequest(title="while valid"))
    assert stream.take(1)[0].result.task.title == "while valid"

    error = stream.ended(timeout=5)  # no command after it, no watch
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (error.details() or "")
