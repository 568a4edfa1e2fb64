"""GetTask and ListTasks on a cache hit (api_grpc.replies): the reply made from the cache entry,
without a model, is the reply the selector path makes; it is never older than the entry; visibility
holds on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from django.db.models.signals import post_init
from google.protobuf.field_mask_pb2 import FieldMask

from api_grpc.converters import task_to_proto
from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.replies import list_tasks_reply, recent_replies
from core.cache import safe_cache
from tasks.cache import task_entry, task_key, task_to_row
from tasks.models import Priority, Task
from tests.api_grpc.helpers import Metadata, bearer, fails, ok
from tests.factories import TaskFactory, actor_of

pytestmark = pytest.mark.django_db(transaction=True)

DUE = datetime(2031, 5, 17, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_kept_replies() -> Iterator[None]:
    recent_replies.clear()
    yield
    recent_replies.clear()


@pytest.fixture
def models_built() -> Iterator[list[Task]]:
    """Every Task instance built while the test runs, in any thread (Django's post_init signal)."""
    built: list[Task] = []

    def count(sender: Any, instance: Task, **kwargs: Any) -> None:
        built.append(instance)

    post_init.connect(count, sender=Task, weak=False)
    yield built
    post_init.disconnect(count, sender=Task)


def get(stub: Any, task_id: str, metadata: Metadata) -> pb.Task:
    return ok(stub.GetTask, pb.GetTaskRequest(id=task_id), metadata).task


def expected(task: Task) -> pb.Task:
    task.refresh_from_db()
    return task_to_proto(task)


def test_a_hit_is_the_reply_of_the_selector_path_and_builds_no_model(
    stub: Any, as_user: Metadata, user: Any, models_built: list[Task], subtests: Any
) -> None:
    tasks = [
        TaskFactory(owner=user, priority=Priority.LOW, tags=["x", "y"], due_date=DUE, description="é ✓"),
        TaskFactory(owner=user, tags=[]),
        TaskFactory(owner=user, completed=True, status="completed", completed_at=DUE),
    ]
    for task in tasks:
        with subtests.test(task=task.title):
            first = get(stub, str(task.pk), as_user)  # a miss: task_get fills the cache
            models_built.clear()
            second = get(stub, str(task.pk), as_user)  # a hit: made from the entry
            third = get(stub, str(task.pk), as_user)  # a hit: the kept reply
            assert models_built == []
            assert first == second == third == expected(task)
            assert second.SerializeToString() == expected(task).SerializeToString()


def test_an_update_is_served_at_once(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="old")
    get(stub, str(task.pk), as_user)
    assert get(stub, str(task.pk), as_user).title == "old"  # kept

    request = pb.UpdateTaskRequest(id=str(task.pk), task=pb.Task(title="new"), update_mask=FieldMask(paths=["title"]))
    updated = ok(stub.UpdateTask, request, as_user).task

    fetched = get(stub, str(task.pk), as_user)
    assert (fetched.title, fetched.version) == ("new", updated.version)
    assert fetched == updated == expected(task)


def test_an_entry_changed_behind_the_kept_reply_is_never_served_stale(stub: Any, as_user: Metadata, user: Any) -> None:
    """The kept reply is served only for an equal entry: any change of the entry (here one made
    without a version bump) makes a new reply."""
    task = TaskFactory(owner=user, title="old")
    get(stub, str(task.pk), as_user)
    get(stub, str(task.pk), as_user)  # kept
    task.title = "changed"
    safe_cache.set(task_key(task.pk), task_entry(task))

    assert get(stub, str(task.pk), as_user).title == "changed"


def test_a_deleted_task_is_not_found(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user)
    get(stub, str(task.pk), as_user)
    get(stub, str(task.pk), as_user)

    ok(stub.DeleteTask, pb.DeleteTaskRequest(id=str(task.pk)), as_user)

    fails(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), as_user, code=grpc.StatusCode.NOT_FOUND)


def test_visibility_on_a_hit(stub: Any, as_user: Metadata, user: Any, other_user: Any, manager: Any) -> None:
    task = TaskFactory(owner=user)
    get(stub, str(task.pk), as_user)
    get(stub, str(task.pk), as_user)  # cached, and its reply kept

    error, trailers = fails(
        stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), bearer(other_user), code=grpc.StatusCode.NOT_FOUND
    )
    assert error.details() == "No task with this id is visible to you."
    assert trailers["taskhub-error-code"] == "not_found"
    assert get(stub, str(task.pk), bearer(manager)) == expected(task)


def test_an_entry_of_another_row_shape_goes_to_the_database(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="from the database")
    safe_cache.set(task_key(task.pk), ("another", *task_to_row(task)[:-1]))

    assert get(stub, str(task.pk), as_user) == expected(task)


def test_a_bad_or_unknown_id_is_not_found(stub: Any, as_user: Metadata) -> None:
    for task_id in ("nope", "6F1C2A5E-0000-4000-8000-000000000404", "6f1c2a5e-0000-4000-8000-000000000404"):
        fails(stub.GetTask, pb.GetTaskRequest(id=task_id), as_user, code=grpc.StatusCode.NOT_FOUND)


def test_with_the_cache_off(stub: Any, as_user: Metadata, user: Any, settings: Any) -> None:
    settings.CACHE_ENABLED = False
    task = TaskFactory(owner=user)

    assert get(stub, str(task.pk), as_user) == get(stub, str(task.pk), as_user) == expected(task)


# -- ListTasks: the page's serialized tasks, kept per page -----------------------------------------------------


def list_page(stub: Any, metadata: Metadata, **fields: Any) -> pb.ListTasksResponse:
    return ok(stub.ListTasks, pb.ListTasksRequest(**fields), metadata)


def test_a_cached_page_is_the_reply_of_the_model_path_and_builds_no_model(
    stub: Any, as_user: Metadata, user: Any, models_built: list[Task]
) -> None:
    tasks = [
        TaskFactory(owner=user, priority=Priority.LOW, tags=["x", "y"], due_date=DUE, description="é ✓"),
        TaskFactory(owner=user, tags=[]),
        TaskFactory(owner=user, completed=True, status="completed", completed_at=DUE),
    ]
    first = list_page(stub, as_user, page_size=2)  # a miss: the page is read from the database
    models_built.clear()
    second = list_page(stub, as_user, page_size=2)  # a hit: the page's tasks serialized
    third = list_page(stub, as_user, page_size=2)  # a hit: the kept serialization

    assert models_built == []
    by_id = {str(task.pk): task for task in tasks}
    reference = pb.ListTasksResponse(
        tasks=[expected(by_id[task.id]) for task in first.tasks], next_page_token=first.next_page_token
    )
    assert len(first.tasks) == 2 and first.next_page_token
    assert first == second == third == reference
    assert list_tasks_reply(actor=actor_of(user), limit=2) == reference.SerializeToString()
    assert (
        list_tasks_reply(actor=actor_of(user), limit=3)
        == pb.ListTasksResponse(
            tasks=[expected(by_id[task.id]) for task in list_page(stub, as_user, page_size=3).tasks]
        ).SerializeToString()
    )  # the last page: no token field


def test_a_page_with_the_same_tasks_and_a_new_next_page_gets_its_token(stub: Any, as_user: Metadata, user: Any) -> None:
    """The kept serialization is of the page's tasks only: a page that keeps its tasks when a task
    is added after them (oldest first) gets the token of the page that now follows."""
    for _ in range(2):
        TaskFactory(owner=user)
    oldest_first = {"page_size": 2, "ordering": pb.TASK_ORDERING_CREATED_AT}
    before = list_page(stub, as_user, **oldest_first)
    assert list_page(stub, as_user, **oldest_first) == before and not before.next_page_token

    ok(stub.CreateTask, pb.CreateTaskRequest(title="newest"), as_user)

    after = list_page(stub, as_user, **oldest_first)
    assert [task.id for task in after.tasks] == [task.id for task in before.tasks]
    following = list_page(stub, as_user, page_token=after.next_page_token, **oldest_first)
    assert [task.title for task in following.tasks] == ["newest"]


def test_a_changed_task_is_listed_at_once(stub: Any, as_user: Metadata, user: Any) -> None:
    task = TaskFactory(owner=user, title="old")
    assert [t.title for t in list_page(stub, as_user).tasks] == ["old"]
    assert [t.title for t in list_page(stub, as_user).tasks] == ["old"]  # kept

    request = pb.UpdateTaskRequest(id=str(task.pk), task=pb.Task(title="new"), update_mask=FieldMask(paths=["title"]))
    ok(stub.UpdateTask, request, as_user)

    assert list_page(stub, as_user).tasks == [expected(task)]
