"""Every TaskService RPC through a real channel: CreateTask (with idempotency keys), GetTask,
ListTasks (each filter, each ordering, only_mine, page sizes, walking the pages), UpdateTask (field
masks, clearing the due date, expected_version) and DeleteTask."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from tasks.models import (
    MAX_DESCRIPTION_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TITLE_LENGTH,
    IdempotencyRecord,
    Priority,
    Status,
    Task,
)
from tasks.selectors import task_list
from tests.api_grpc.helpers import Metadata, api_key, bearer, fails, ok, ok_with_trailers, timestamp
from tests.factories import TaskFactory, UserFactory, actor_of

pytestmark = pytest.mark.django_db(transaction=True)

DUE = datetime(2031, 5, 17, 9, 30, 15, 123456, tzinfo=UTC)


def assert_matches_row(message: pb.Task, task: Task) -> None:
    """The proto task says exactly what the database row says."""
    task.refresh_from_db()
    assert message.id == str(task.pk)
    assert message.owner_id == task.owner_id
    assert (message.title, message.description) == (task.title, task.description)
    assert message.priority == {1: pb.PRIORITY_LOW, 2: pb.PRIORITY_MEDIUM, 3: pb.PRIORITY_HIGH}[task.priority]
    assert pb.Status.Name(message.status) == f"STATUS_{task.status.upper()}"
    assert message.completed is task.completed
    assert list(message.tags) == task.tags
    assert message.version == task.version
    for name in ("due_date", "created_at", "updated_at", "completed_at"):
        value = getattr(task, name)
        if value is None:
            assert not message.HasField(name), name
        else:
            assert message.HasField(name), name
            assert getattr(message, name).ToDatetime(tzinfo=UTC) == value, name


# -- CreateTask ----------------------------------------------------------------------------------------------


def test_create_task_with_every_field(stub: Any, as_user: Metadata, user: Any) -> None:
    request = pb.CreateTaskRequest(
        title="  Write the report  ",
        description="Quarterly numbers",
        priority=pb.PRIORITY_HIGH,
        status=pb.STATUS_IN_PROGRESS,
        due_date=timestamp(DUE),
        tags=["Work", " work ", "Q3"],
    )

    task = ok(stub.CreateTask, request, as_user).task

    assert uuid.UUID(task.id)
    assert task.owner_id == user.pk
    assert task.title == "Write the report"
    assert (task.priority, task.status, task.completed) == (pb.PRIORITY_HIGH, pb.STATUS_IN_PROGRESS, False)
    assert task.due_date.ToDatetime(tzinfo=UTC) == DUE
    assert list(task.tags) == ["work", "q3"]
    assert task.version == 1
    assert not task.HasField("completed_at")
    assert_matches_row(task, Task.objects.get(pk=task.id))


def test_create_task_defaults(stub: Any, as_user: Metadata) -> None:
    task = ok(stub.CreateTask, pb.CreateTaskRequest(title="Just a title"), as_user).task

    assert (task.priority, task.status, task.completed) == (pb.PRIORITY_MEDIUM, pb.STATUS_TODO, False)
    assert (task.description, list(task.tags)) == ("", [])
    assert not task.HasField("due_date")
    stored = Task.objects.get(pk=task.id)
    assert (stored.priority, stored.status, stored.due_date) == (Priority.MEDIUM, Status.TODO, None)


@pytest.mark.parametrize(
    ("fields", "status"),
    [({"completed": True}, pb.STATUS_COMPLETED), ({"status": pb.STATUS_COMPLETED}, pb.STATUS_COMPLETED)],
)
def test_create_completed_task(stub: Any, as_user: Metadata, fields: dict[str, Any], status: int) -> None:
    task = ok(stub.CreateTask, pb.CreateTaskRequest(title="Done", **fields), as_user).task

    assert (task.status, task.completed) == (status, True)
    assert task.HasField("completed_at")
    assert_matches_row(task, Task.objects.get(pk=task.id))


def test_create_with_an_api_key(stub: Any, user: Any) -> None:
    task = ok(stub.CreateTask, pb.CreateTaskRequest(title="By key"), api_key(user)).task

    assert Task.objects.get(pk=task.id).owner_id == user.pk


def test_idempotency_key_replay_returns_the_same_task(stub: Any, as_user: Metadata) -> None:
    request = pb.CreateTaskRequest(title="Once", tags=["a"], due_date=timestamp(DUE))
    metadata = (*as_user, ("idempotency-key", "create-once-1"))

    first, first_trailers = ok_with_trailers(stub.CreateTask, request, metadata)
    replay, replay_trailers = ok_with_trailers(stub.CreateTask, request, metadata)

    assert "idempotent-replayed" not in first_trailers
    assert replay_trailers["idempotent-replayed"] == "true"
    assert replay == first  # the whole first result, timestamps to the microsecond
    assert Task.objects.count() == 1


def test_idempotency_keys_belong_to_their_user(stub: Any, as_user: Metadata, as_other: Metadata) -> None:
    request = pb.CreateTaskRequest(title="Mine")

    mine = ok(stub.CreateTask, request, (*as_user, ("idempotency-key", "shared")))
    theirs, theirs_trailers = ok_with_trailers(stub.CreateTask, request, (*as_other, ("idempotency-key", "shared")))

    assert mine.task.id != theirs.task.id
    assert "idempotent-replayed" not in theirs_trailers
    assert Task.objects.count() == 2


def test_idempotency_key_with_other_input_is_invalid_argument(stub: Any, as_user: Metadata) -> None:
    metadata = (*as_user, ("idempotency-key", "k-1"))
    ok(stub.CreateTask, pb.CreateTaskRequest(title="a"), metadata)

    error, _ = fails(
        stub.CreateTask,
        pb.CreateTaskRequest(title="b"),
        metadata,
        code=grpc.StatusCode.INVALID_ARGUMENT,
        error_code="idempotency_key_reused",
    )

    assert "Idempotency-Key" in error.details()
    assert list(Task.objects.values_list("title", flat=True)) == ["a"]


def test_idempotency_key_in_flight_is_aborted(stub: Any, as_user: Metadata, user: Any) -> None:
    metadata = (*as_user, ("idempotency-key", "k-2"))
    ok(stub.CreateTask, pb.CreateTaskRequest(title="a"), metadata)
    # As if the first request were still running: its record has no response yet.
    IdempotencyRecord.objects.filter(user=user, key="k-2").update(response=None)

    fails(
        stub.CreateTask,
        pb.CreateTaskRequest(title="a"),
        metadata,
        code=grpc.StatusCode.ABORTED,
        error_code="idempotency_key_in_flight",
    )
    assert Task.objects.count() == 1


def test_an_idempotency_key_over_255_characters_is_invalid(stub: Any, as_user: Metadata) -> None:
    _, found = fails(
        stub.CreateTask,
        pb.CreateTaskRequest(title="a"),
        (*as_user, ("idempotency-key", "k" * 256)),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        error_code="invalid_input",
    )

    assert "idempotency_key" in found["taskhub-field-errors"]
    assert not Task.objects.exists()


# -- GetTask -------------------------------------------------------------------------------------------------


def test_get_task(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, priority=Priority.LOW, tags=["x", "y"], due_date=DUE)

    message = ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), as_user).task

    assert_matches_row(message, task)


def test_get_task_of_a_completed_task(stub: Any, as_user: Metadata, user: Any) -> None:
    created = ok(stub.CreateTask, pb.CreateTaskRequest(title="c", completed=True), as_user).task

    fetched = ok(stub.GetTask, pb.GetTaskRequest(id=created.id), as_user).task

    assert fetched == created
    assert fetched.HasField("completed_at")


def test_a_manager_gets_any_task(stub: Any, manager: Any, other_user: Any) -> None:
    task = TaskFactory(owner=other_user)

    assert ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), bearer(manager)).task.id == str(task.pk)


def test_a_viewer_and_a_read_only_key_read_their_own(stub: Any, viewer: Any) -> None:
    task = TaskFactory(owner=viewer)

    for metadata in (bearer(viewer), api_key(viewer, read_only=True)):
        assert ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), metadata).task.id == str(task.pk)
        assert [t.id for t in ok(stub.ListTasks, pb.ListTasksRequest(), metadata).tasks] == [str(task.pk)]


# -- ListTasks -----------------------------------------------------------------------------------------------

BASE = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def listed(user: Any, other_user: Any) -> dict[str, Task]:
    """Six tasks of `user` with distinct creation times, and one of another user that never shows."""

    def make(name: str, minutes: int, **fields: Any) -> Task:
        task = TaskFactory(owner=user, title=name, description=f"about {name}", **fields)
        Task.objects.filter(pk=task.pk).update(created_at=BASE + timedelta(minutes=minutes))
        task.refresh_from_db()
        return task

    tasks = {
        "alpha": make("alpha", 1, priority=Priority.HIGH, tags=["home"], due_date=BASE + timedelta(days=3)),
        "bravo": make("bravo", 2, priority=Priority.LOW, tags=["work", "home"], due_date=BASE + timedelta(days=1)),
        "charlie": make(
            "charlie",
            3,
            priority=Priority.MEDIUM,
            status=Status.COMPLETED,
            completed=True,
            completed_at=BASE,
            tags=["work"],
        ),
        "delta": make("Delta Report", 4, priority=Priority.HIGH, status=Status.IN_PROGRESS, due_date=BASE),
        "echo": make("echo", 5, priority=Priority.LOW, due_date=BASE + timedelta(days=2)),
        "foxtrot": make("foxtrot", 6, priority=Priority.MEDIUM),
    }
    TaskFactory(owner=other_user, title="alpha of someone else", tags=["home"], priority=Priority.HIGH)
    return tasks


def list_ids(stub: Any, metadata: Metadata, **fields: Any) -> list[str]:
    return [task.id for task in ok(stub.ListTasks, pb.ListTasksRequest(page_size=100, **fields), metadata).tasks]


def ids(tasks: dict[str, Task], *names: str) -> list[str]:
    return [str(tasks[name].pk) for name in names]


FILTER_CASES = [
    ({}, ["foxtrot", "echo", "delta", "charlie", "bravo", "alpha"]),
    ({"status": pb.STATUS_TODO}, ["foxtrot", "echo", "bravo", "alpha"]),
    ({"status": pb.STATUS_IN_PROGRESS}, ["delta"]),
    ({"status": pb.STATUS_COMPLETED}, ["charlie"]),
    ({"priority": pb.PRIORITY_HIGH}, ["delta", "alpha"]),
    ({"priority": pb.PRIORITY_LOW}, ["echo", "bravo"]),
    ({"completed": True}, ["charlie"]),
    ({"completed": False}, ["foxtrot", "echo", "delta", "bravo", "alpha"]),
    ({"tag": "home"}, ["bravo", "alpha"]),
    ({"tag": "WORK"}, ["charlie", "bravo"]),
    ({"tag": "nothing"}, []),
    ({"due_before": timestamp(BASE + timedelta(days=2))}, ["delta", "bravo"]),
    ({"due_after": timestamp(BASE + timedelta(days=1))}, ["echo", "alpha"]),
    (
        {"due_after": timestamp(BASE), "due_before": timestamp(BASE + timedelta(days=3))},
        ["echo", "bravo"],
    ),
    ({"search": "REPORT"}, ["delta"]),
    ({"search": "about ech"}, ["echo"]),  # the description
    ({"priority": pb.PRIORITY_HIGH, "status": pb.STATUS_TODO, "tag": "home"}, ["alpha"]),
]


def test_list_filters(stub: Any, as_user: Metadata, listed: dict[str, Task], subtests: Any) -> None:
    for fields, expected in FILTER_CASES:
        with subtests.test(msg=str(fields)):
            assert list_ids(stub, as_user, **fields) == ids(listed, *expected)


ORDERING_CASES = [
    (pb.TASK_ORDERING_UNSPECIFIED, ["foxtrot", "echo", "delta", "charlie", "bravo", "alpha"]),
    (pb.TASK_ORDERING_CREATED_AT_DESC, ["foxtrot", "echo", "delta", "charlie", "bravo", "alpha"]),
    (pb.TASK_ORDERING_CREATED_AT, ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]),
    # Tasks without a due date come last in both directions.
    (pb.TASK_ORDERING_DUE_DATE, ["delta", "bravo", "echo", "alpha", None, None]),
    (pb.TASK_ORDERING_DUE_DATE_DESC, ["alpha", "echo", "bravo", "delta", None, None]),
    (pb.TASK_ORDERING_PRIORITY, ["low", "low", "medium", "medium", "high", "high"]),
    (pb.TASK_ORDERING_PRIORITY_DESC, ["high", "high", "medium", "medium", "low", "low"]),
]


def test_list_orderings(stub: Any, as_user: Metadata, listed: dict[str, Task], subtests: Any) -> None:
    by_id = {str(task.pk): task for task in listed.values()}
    for ordering, expected in ORDERING_CASES:
        with subtests.test(msg=pb.TaskOrdering.Name(ordering)):
            got = [by_id[task_id] for task_id in list_ids(stub, as_user, ordering=ordering)]
            if ordering in (pb.TASK_ORDERING_DUE_DATE, pb.TASK_ORDERING_DUE_DATE_DESC):
                dated = [name for name in expected if name]
                assert [str(t.pk) for t in got[: len(dated)]] == ids(listed, *dated)
                assert {t.title for t in got[len(dated) :]} == {"charlie", "foxtrot"}  # the undated ones
            elif ordering in (pb.TASK_ORDERING_PRIORITY, pb.TASK_ORDERING_PRIORITY_DESC):
                assert [Priority(t.priority).label for t in got] == expected
                # Ties are broken by id, in the direction of the ordering, so pages never overlap.
                keys = [(t.priority, t.pk.int) for t in got]
                assert keys == sorted(keys, reverse=ordering == pb.TASK_ORDERING_PRIORITY_DESC)
            else:
                assert [str(t.pk) for t in got] == ids(listed, *expected)


def test_only_mine(stub: Any, manager: Any, user: Any, listed: dict[str, Task]) -> None:
    own = TaskFactory(owner=manager, title="the manager's")
    everyone = list_ids(stub, bearer(manager))
    mine = list_ids(stub, bearer(manager), only_mine=True)

    assert len(everyone) == len(listed) + 2  # a manager sees every user's tasks
    assert mine == [str(own.pk)]
    # For an editor, "my tasks" is what they see anyway.
    assert list_ids(stub, bearer(user), only_mine=True) == list_ids(stub, bearer(user))


def test_page_size_default_and_bounds(stub: Any, as_user: Metadata, user: Any) -> None:
    Task.objects.bulk_create(Task(owner=user, title=f"t{n}") for n in range(101))

    def count(page_size: int) -> int:
        return len(ok(stub.ListTasks, pb.ListTasksRequest(page_size=page_size), as_user).tasks)

    assert count(0) == 20  # 0: the default
    assert count(1) == 1
    assert count(100) == 100
    for bad in (101, -1, 2**31 - 1):
        _, found = fails(
            stub.ListTasks,
            pb.ListTasksRequest(page_size=bad),
            as_user,
            code=grpc.StatusCode.INVALID_ARGUMENT,
            error_code="invalid_input",
        )
        assert "page_size" in found["taskhub-field-errors"]


@pytest.mark.parametrize(
    "ordering", [pb.TASK_ORDERING_UNSPECIFIED, pb.TASK_ORDERING_DUE_DATE, pb.TASK_ORDERING_PRIORITY_DESC]
)
def test_walking_next_page_token_to_the_end(
    stub: Any, as_user: Metadata, listed: dict[str, Task], user: Any, ordering: int
) -> None:
    TaskFactory(owner=user, title="golf", priority=Priority.HIGH, due_date=BASE + timedelta(days=9))
    everything = list_ids(stub, as_user, ordering=ordering)
    assert len(everything) == 7

    pages: list[list[str]] = []
    token = ""
    while True:
        page = ok(stub.ListTasks, pb.ListTasksRequest(page_size=3, page_token=token, ordering=ordering), as_user)
        pages.append([task.id for task in page.tasks])
        token = page.next_page_token
        if not token:
            break
        assert len(pages) < 10

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [task_id for page in pages for task_id in page] == everything


def test_the_cursor_of_a_rest_previous_link_is_no_page_token(
    stub: Any, as_user: Metadata, listed: dict[str, Task], user: Any
) -> None:
    """ListTasks pages forward: a backward cursor listed the tasks before its position (the pages
    already seen, with a next token)."""
    second = task_list(actor=actor_of(user), limit=2, cursor=task_list(actor=actor_of(user), limit=2).next_cursor)
    assert second.previous_cursor is not None

    _, found = fails(
        stub.ListTasks,
        pb.ListTasksRequest(page_size=2, page_token=second.previous_cursor),
        as_user,
        code=grpc.StatusCode.INVALID_ARGUMENT,
        error_code="invalid_input",
    )
    assert json.loads(found["taskhub-field-errors"]) == {
        "page_token": ["Must be the cursor of a next page: this list pages forward only."]
    }


@pytest.mark.parametrize("ordering", [pb.TASK_ORDERING_UNSPECIFIED, pb.TASK_ORDERING_PRIORITY])
def test_a_page_of_the_largest_valid_tasks_is_cut_to_what_a_reply_may_hold(
    stub: Any, as_user: Metadata, user: Any, settings: Any, ordering: int
) -> None:
    """100 tasks of four-byte characters to every limit come to ~4.5 MB, over the 4 MiB reply that
    the server sends and grpcio's clients accept by default: the page holds the tasks that fit, and
    its token leads to the rest (the whole walk has every task once)."""
    emoji = "\U0001f600"
    largest = {
        "title": emoji * MAX_TITLE_LENGTH,
        "description": emoji * MAX_DESCRIPTION_LENGTH,
        "tags": [f"{n:02d}" + emoji * (MAX_TAG_LENGTH - 2) for n in range(MAX_TAGS)],
    }
    Task(owner=user, **largest).full_clean()  # valid, as the service would store it
    tasks = Task.objects.bulk_create([Task(owner=user, priority=list(Priority)[n % 3], **largest) for n in range(100)])

    pages: list[pb.ListTasksResponse] = []
    token = ""
    while not pages or token:
        pages.append(
            ok(stub.ListTasks, pb.ListTasksRequest(page_size=100, page_token=token, ordering=ordering), as_user)
        )
        token = pages[-1].next_page_token
        assert len(pages) < 5

    assert len(pages) > 1 and 0 < len(pages[0].tasks) < 100
    first_again = ok(stub.ListTasks, pb.ListTasksRequest(page_size=100, ordering=ordering), as_user)
    assert first_again == pages[0]  # the cached page is cut the same way
    assert all(page.ByteSize() <= settings.GRPC_MAX_SEND_MESSAGE_BYTES for page in pages)
    walked = [task.id for page in pages for task in page.tasks]
    assert sorted(walked) == sorted(str(task.pk) for task in tasks)
    assert pages[0].tasks[0].title == largest["title"]


def test_a_page_token_of_another_ordering_is_invalid(stub: Any, as_user: Metadata, listed: dict[str, Task]) -> None:
    token = ok(stub.ListTasks, pb.ListTasksRequest(page_size=2), as_user).next_page_token
    assert token

    _, found = fails(
        stub.ListTasks,
        pb.ListTasksRequest(page_size=2, page_token=token, ordering=pb.TASK_ORDERING_PRIORITY),
        as_user,
        code=grpc.StatusCode.INVALID_ARGUMENT,
        error_code="invalid_input",
    )
    assert "page_token" in found["taskhub-field-errors"]


def test_list_sees_writes_at_once(stub: Any, as_user: Metadata) -> None:
    """List pages are cached; a write through gRPC drops them."""
    assert list_ids(stub, as_user) == []
    created = ok(stub.CreateTask, pb.CreateTaskRequest(title="new"), as_user).task
    assert list_ids(stub, as_user) == [created.id]
    ok(stub.DeleteTask, pb.DeleteTaskRequest(id=created.id), as_user)
    assert list_ids(stub, as_user) == []


# -- UpdateTask ----------------------------------------------------------------------------------------------


def update(task_id: Any, paths: list[str], expected_version: int | None = None, **fields: Any) -> pb.UpdateTaskRequest:
    request = pb.UpdateTaskRequest(id=str(task_id), task=pb.Task(**fields), update_mask=FieldMask(paths=paths))
    if expected_version is not None:
        request.expected_version = expected_version
    return request


def test_update_changes_only_the_masked_fields(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="Old", description="Keep me", priority=Priority.LOW)

    message = ok(
        stub.UpdateTask,
        update(task.pk, ["title"], title="New", description="ignored", priority=pb.PRIORITY_HIGH),
        as_user,
    ).task

    assert (message.title, message.description, message.priority) == ("New", "Keep me", pb.PRIORITY_LOW)
    assert message.version == 2
    assert_matches_row(message, task)


UPDATE_CASES = [
    (["description"], {"description": "More"}, lambda t: t.description == "More"),
    (["priority"], {"priority": pb.PRIORITY_HIGH}, lambda t: t.priority == Priority.HIGH),
    (["status"], {"status": pb.STATUS_IN_PROGRESS}, lambda t: t.status == Status.IN_PROGRESS),
    (["tags"], {"tags": ["A", "b", "a"]}, lambda t: t.tags == ["a", "b"]),
    (["due_date"], {"due_date": timestamp(DUE)}, lambda t: t.due_date == DUE),
    (
        ["status"],
        {"status": pb.STATUS_COMPLETED},
        lambda t: t.completed and t.completed_at is not None and t.status == Status.COMPLETED,
    ),
    (
        ["completed"],
        {"completed": True},
        lambda t: t.completed and t.completed_at is not None and t.status == Status.COMPLETED,
    ),
    (
        ["title", "priority", "tags"],
        {"title": "T", "priority": pb.PRIORITY_LOW, "tags": []},
        lambda t: (t.title, t.priority, t.tags) == ("T", Priority.LOW, []),
    ),
]


def test_update_each_path(stub: Any, as_user: Metadata, user: Any, subtests: Any) -> None:
    for paths, fields, check in UPDATE_CASES:
        with subtests.test(msg=f"{paths} {fields}"):
            task = TaskFactory(owner=user, tags=["old"])

            message = ok(stub.UpdateTask, update(task.pk, paths, **fields), as_user).task

            task.refresh_from_db()
            assert check(task)
            assert task.version == 2
            assert_matches_row(message, task)


def test_uncompleting_goes_back_to_todo(stub: Any, as_user: Metadata) -> None:
    created = ok(stub.CreateTask, pb.CreateTaskRequest(title="c", completed=True), as_user).task

    message = ok(stub.UpdateTask, update(created.id, ["completed"], completed=False), as_user).task

    assert (message.status, message.completed, message.HasField("completed_at")) == (pb.STATUS_TODO, False, False)


def test_an_unset_due_date_in_the_mask_clears_it(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, due_date=DUE)

    message = ok(stub.UpdateTask, update(task.pk, ["due_date"]), as_user).task

    assert not message.HasField("due_date")
    task.refresh_from_db()
    assert (task.due_date, task.version) == (None, 2)


def test_a_masked_enum_left_unspecified_is_invalid(stub: Any, as_user: Metadata, user: Any, subtests: Any) -> None:
    task = TaskFactory(owner=user, priority=Priority.HIGH)
    for path in ("priority", "status"):
        with subtests.test(msg=path):
            _, found = fails(
                stub.UpdateTask,
                update(task.pk, [path]),
                as_user,
                code=grpc.StatusCode.INVALID_ARGUMENT,
                error_code="invalid_input",
            )
            assert path in found["taskhub-field-errors"]
    task.refresh_from_db()
    assert (task.priority, task.version) == (Priority.HIGH, 1)


def test_an_update_that_changes_nothing_keeps_the_version(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="Same")

    assert ok(stub.UpdateTask, update(task.pk, ["title"], title="Same"), as_user).task.version == 1


def test_an_empty_or_unknown_mask_is_invalid(stub: Any, as_user: Metadata, user: Any, subtests: Any) -> None:
    task = TaskFactory(owner=user, title="Untouched")
    for paths in [[], ["owner_id"], ["version"], ["title", "nonsense"], ["id"], ["created_at"], ["task.title"]]:
        with subtests.test(msg=str(paths)):
            _, found = fails(
                stub.UpdateTask,
                update(task.pk, paths, title="x", owner_id=999, version=9),
                as_user,
                code=grpc.StatusCode.INVALID_ARGUMENT,
                error_code="invalid_input",
            )

            assert "update_mask" in found["taskhub-field-errors"]
            task.refresh_from_db()
            assert (task.title, task.version) == ("Untouched", 1)


def test_expected_version(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="v1")

    assert ok(stub.UpdateTask, update(task.pk, ["title"], expected_version=1, title="v2"), as_user).task.version == 2
    _, found = fails(
        stub.UpdateTask,
        update(task.pk, ["title"], expected_version=1, title="lost update"),
        as_user,
        code=grpc.StatusCode.ABORTED,
        error_code="stale_version",
    )

    assert found["taskhub-current-version"] == "2"
    task.refresh_from_db()
    assert (task.title, task.version) == ("v2", 2)


# -- DeleteTask ----------------------------------------------------------------------------------------------


def test_delete_then_get_is_not_found(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user)
    ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), as_user)  # cached now

    assert ok(stub.DeleteTask, pb.DeleteTaskRequest(id=str(task.pk)), as_user) == pb.DeleteTaskResponse()

    assert not Task.objects.filter(pk=task.pk).exists()
    fails(
        stub.GetTask,
        pb.GetTaskRequest(id=str(task.pk)),
        as_user,
        code=grpc.StatusCode.NOT_FOUND,
        error_code="not_found",
    )
    fails(
        stub.DeleteTask,
        pb.DeleteTaskRequest(id=str(task.pk)),
        as_user,
        code=grpc.StatusCode.NOT_FOUND,
        error_code="not_found",
    )


def test_delete_with_expected_version(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="v1")
    ok(stub.UpdateTask, update(task.pk, ["title"], title="v2"), as_user)

    _, found = fails(
        stub.DeleteTask,
        pb.DeleteTaskRequest(id=str(task.pk), expected_version=1),
        as_user,
        code=grpc.StatusCode.ABORTED,
        error_code="stale_version",
    )

    assert found["taskhub-current-version"] == "2"
    assert Task.objects.filter(pk=task.pk, version=2).exists()
    ok(stub.DeleteTask, pb.DeleteTaskRequest(id=str(task.pk), expected_version=2), as_user)
    assert not Task.objects.filter(pk=task.pk).exists()


def test_a_manager_updates_and_deletes_any_task(stub: Any, manager: Any) -> None:
    task = TaskFactory(owner=UserFactory(), title="theirs")

    assert ok(stub.UpdateTask, update(task.pk, ["title"], title="mine now"), bearer(manager)).task.title == "mine now"
    ok(stub.DeleteTask, pb.DeleteTaskRequest(id=str(task.pk)), bearer(manager))
    assert not Task.objects.filter(pk=task.pk).exists()
