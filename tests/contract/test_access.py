"""Who may do what (docs/domain.md, "Visibility and roles"), the same on every protocol.

Every refused write is followed by a read through the owner's driver: nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from core.auth import api_key_revoke
from tests.conftest import access_token
from tests.contract.drivers import Connect, Credentials, Driver, Outcome, new_api_key
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

Call = Callable[[Driver, str], Outcome]

READS: dict[str, Call] = {
    "get": lambda driver, task_id: driver.get(task_id),
    "list": lambda driver, task_id: driver.list(),
    "mine": lambda driver, task_id: driver.mine(),
    "search": lambda driver, task_id: driver.search("task"),
}
WRITES: dict[str, Call] = {
    "create": lambda driver, task_id: driver.create({"title": "Intruder's task"}),
    "update": lambda driver, task_id: driver.update(task_id, {"title": "Changed"}),
    "update with version": lambda driver, task_id: driver.update(task_id, {"priority": "low"}, expected_version=1),
    "delete": lambda driver, task_id: driver.delete(task_id),
}
EVERY_CALL = {**READS, **WRITES}


@pytest.fixture
def task(alice: Driver) -> dict[str, Any]:
    return alice.create({"title": "Alice's task", "priority": "high", "tags": ["mine"]}).unwrap()


def assert_unchanged(owner: Driver, task: dict[str, Any]) -> None:
    """Through the protocol: the task reads as before, and it is still the owner's only task."""
    assert owner.get(task["id"]).unwrap() == task
    assert owner.list().unwrap().items == [task]


# -- unauthenticated -------------------------------------------------------------------------------

BAD_CREDENTIALS: dict[str, Callable[[Connect, Any], Driver]] = {
    "no credentials": lambda connect, user: connect.anonymous(),
    "garbage token": lambda connect, user: connect.with_token("not-a-jwt"),
    "token signed by somebody else": lambda connect, user: connect.with_token(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwidXNlcl9pZCI6IjEiLCJleHAiOjQxMDI0NDQ4MDB9."
        "c2lnbmF0dXJlLW9mLWFub3RoZXIta2V5"
    ),
    "empty token": lambda connect, user: connect.with_token(""),
    "malformed API key": lambda connect, user: connect.with_raw_api_key("th_nope"),
    "unknown API key": lambda connect, user: connect.with_raw_api_key("th_000000000000_" + "x" * 43),
    "revoked API key": lambda connect, user: connect.with_raw_api_key(revoked_key(user)),
    # Credentials sent but not understood are refused, never skipped for the next ones
    # (docs/architecture.md, "Authentication").
    "Basic beside a valid API key": lambda connect, user: connect.with_credentials(
        Credentials(authorization="Basic YWxpY2U6c2VjcmV0", api_key=new_api_key(user))
    ),
    "bare Bearer beside a valid API key": lambda connect, user: connect.with_credentials(
        Credentials(authorization="Bearer", api_key=new_api_key(user))
    ),
    "empty API key": lambda connect, user: connect.with_raw_api_key(""),
    # A token and an API key at once are refused, whatever each holds: once the token won and an
    # invalid key beside it went unchecked.
    "invalid API key beside a valid token": lambda connect, user: connect.with_credentials(
        Credentials(bearer=access_token(user), api_key="th_nope")
    ),
    "revoked API key beside a valid token": lambda connect, user: connect.with_credentials(
        Credentials(bearer=access_token(user), api_key=revoked_key(user))
    ),
    "valid API key beside a valid token": lambda connect, user: connect.with_credentials(
        Credentials(bearer=access_token(user), api_key=new_api_key(user))
    ),
    "valid API key beside a garbage token": lambda connect, user: connect.with_credentials(
        Credentials(bearer="not-a-jwt", api_key=new_api_key(user))
    ),
}


def revoked_key(user: Any) -> str:
    raw = new_api_key(user)
    api_key_revoke(prefix=raw.split("_")[1])
    return raw


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS.values()), ids=list(BAD_CREDENTIALS))
@pytest.mark.parametrize("call", list(EVERY_CALL.values()), ids=list(EVERY_CALL))
def test_missing_or_invalid_credentials_are_unauthenticated(
    connect: Connect, alice: Driver, user: Any, task: dict[str, Any], credentials: Any, call: Call
) -> None:
    stranger = credentials(connect, user)

    assert call(stranger, task["id"]).error == "unauthenticated"
    assert_unchanged(alice, task)


def test_an_unknown_task_is_unauthenticated_before_not_found(connect: Connect) -> None:
    """No credentials, no information: not even whether the id exists."""
    assert connect.anonymous().get("00000000-0000-4000-8000-000000000000").error == "unauthenticated"


# -- read-only roles -------------------------------------------------------------------------------


def test_a_viewer_reads_own_tasks_but_writes_nothing(connect: Connect, viewer: Any) -> None:
    owned = TaskFactory(owner=viewer, title="Viewer's task")  # a viewer cannot create one through the API
    driver = connect.as_user(viewer)
    task = driver.get(str(owned.pk)).unwrap()
    assert driver.list().unwrap().items == [task]
    assert driver.mine().unwrap().items == [task]
    assert driver.search("viewer").unwrap().items == [task]

    for name, write in WRITES.items():
        assert write(driver, task["id"]).error == "forbidden", name
    assert_unchanged(driver, task)


def test_a_viewer_writing_a_task_of_somebody_else_is_forbidden_too(
    connect: Connect, viewer: Any, alice: Driver, task: dict[str, Any]
) -> None:
    """The role is checked before the task is looked up (it leaks nothing: the answer is the same for any id)."""
    driver = connect.as_user(viewer)

    for task_id in (task["id"], "00000000-0000-4000-8000-000000000000"):
        assert driver.get(task_id).error == "not_found"
        assert driver.update(task_id, {"title": "x"}).error == "forbidden"
        assert driver.delete(task_id).error == "forbidden"
    assert_unchanged(alice, task)


# Values the domain refuses, sent where the role or the expected version already refuses the request.
REFUSED_VALUES = {
    "title of 201 characters": {"title": "x" * 201},
    "blank title": {"title": "   "},
    "description of 10001 characters": {"description": "x" * 10_001},
    "101 tags": {"tags": [f"t{n}" for n in range(101)]},
    "tag of 51 characters": {"tags": ["x" * 51]},
    "NUL in the title": {"title": "a\x00b"},
}


@pytest.mark.parametrize("values", list(REFUSED_VALUES.values()), ids=list(REFUSED_VALUES))
def test_the_role_and_the_version_are_checked_before_the_values(
    connect: Connect, viewer: Any, alice: Driver, values: dict[str, Any]
) -> None:
    """In the same order on every protocol (REST's parser once checked lengths first): who may write,
    then which version (RFC 9110 §13.2.1: preconditions before the content), then the values."""
    task = alice.create({"title": "v1"}).unwrap()
    current = alice.update(task["id"], {"title": "v2"}).unwrap()

    assert connect.as_user(viewer).create({"title": "ok", **values}).error == "forbidden"
    assert alice.update(task["id"], values, expected_version=1).error == "stale_version"
    assert alice.update(task["id"], values, expected_version=current["version"]).error == "invalid_input"
    assert alice.get(task["id"]).unwrap() == current


def test_a_read_only_api_key_reads_but_writes_nothing(connect: Connect, user: Any, alice: Driver, task: Any) -> None:
    driver = connect.with_api_key(user, read_only=True)

    assert driver.get(task["id"]).unwrap() == task
    assert driver.list().unwrap().items == [task]
    assert driver.mine().unwrap().items == [task]
    for name, write in WRITES.items():
        assert write(driver, task["id"]).error == "forbidden", name
    assert_unchanged(alice, task)


def test_a_read_write_api_key_acts_as_its_user(connect: Connect, user: Any, alice: Driver, task: Any) -> None:
    driver = connect.with_api_key(user)

    assert driver.get(task["id"]).unwrap() == task
    created = driver.create({"title": "Through a key"}).unwrap()
    assert created["owner"] == user.pk
    changed = driver.update(task["id"], {"title": "Changed by key"}).unwrap()
    assert alice.get(task["id"]).unwrap() == changed
    assert driver.delete(created["id"]).ok
    assert alice.get(created["id"]).error == "not_found"


def test_a_viewer_api_key_is_read_only_whatever_the_key_says(connect: Connect, viewer: Any) -> None:
    owned = TaskFactory(owner=viewer, title="Viewer's task")
    driver = connect.with_api_key(viewer, read_only=False)

    assert driver.get(str(owned.pk)).ok
    assert driver.create({"title": "x"}).error == "forbidden"
    assert driver.update(str(owned.pk), {"title": "x"}).error == "forbidden"


# -- other users' tasks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda driver, task_id: driver.get(task_id),
        WRITES["update"],
        WRITES["update with version"],
        lambda driver, task_id: driver.update(task_id, {"title": ""}),  # invalid too: the task is still unseen
        WRITES["delete"],
    ],
    ids=["get", "update", "update with version", "invalid update", "delete"],
)
def test_another_users_task_is_not_found(alice: Driver, bob: Driver, task: dict[str, Any], call: Call) -> None:
    outcome = call(bob, task["id"])

    assert outcome.error == "not_found"
    assert_unchanged(alice, task)


def test_another_users_tasks_never_show_in_lists(alice: Driver, bob: Driver, task: dict[str, Any]) -> None:
    bobs = bob.create({"title": "Bob's task", "priority": "high", "tags": ["mine"]}).unwrap()

    for page in (
        bob.list(),
        bob.mine(),
        bob.search("task"),
        bob.list(filters={"tag": "mine"}),
        bob.list(filters={"priority": "high"}, ordering="-priority"),
    ):
        assert page.unwrap().items == [bobs]
    assert alice.list().unwrap().items == [task]


# -- managers --------------------------------------------------------------------------------------


def test_a_manager_sees_and_updates_everybodys_tasks(
    connect: Connect, manager: Any, alice: Driver, bob: Driver, task: dict[str, Any]
) -> None:
    bobs = bob.create({"title": "Bob's task"}).unwrap()
    boss = connect.as_user(manager)
    own = boss.create({"title": "Manager's task"}).unwrap()

    assert boss.get(task["id"]).unwrap() == task
    assert boss.list().unwrap().items == [own, bobs, task]
    assert boss.search("task").unwrap().items == [own, bobs, task]
    assert boss.list(filters={"priority": "high"}).unwrap().items == [task]
    assert boss.mine().unwrap().items == [own]  # "my tasks" stay the manager's own

    due = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)
    changed = boss.update(task["id"], {"status": "completed", "due_date": due}, expected_version=1).unwrap()
    assert (changed["owner"], changed["status"], changed["due_date"], changed["version"]) == (
        task["owner"],
        "completed",
        due,
        2,
    )
    assert alice.get(task["id"]).unwrap() == changed
    assert alice.list().unwrap().items == [changed]
    assert boss.update(task["id"], {"title": "again"}, expected_version=1).error == "stale_version"

    assert boss.delete(bobs["id"]).ok
    assert bob.get(bobs["id"]).error == "not_found"
    assert bob.list().unwrap().items == []
