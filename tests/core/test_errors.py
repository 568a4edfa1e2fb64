"""The one error table (`core.errors.OUTCOMES`): every error class has a row, and every protocol answers
each class the way its row says (docs/api/errors.md, "The table").

The walk makes the task read of each protocol raise each error class: the domain's `task_get`, as each
adapter imported it, is replaced for the test by one that raises. Everything around it is real: the
REST and GraphQL views through Django's test client, and a real gRPC server in this process reached
over a real channel. The contract suite (tests/contract/) proves the same rows with real scenarios
for the errors a scenario can cause.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import grpc
import pytest

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.server import build_server
from core import errors
from tests.api_graphql.conftest import gql
from tests.api_grpc.helpers import bearer, fails, terminate_other_connections


def _all_error_classes() -> list[type[errors.ApplicationError]]:
    found: list[type[errors.ApplicationError]] = []
    pending = [errors.ApplicationError]
    while pending:
        cls = pending.pop()
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__name__)


ERROR_CLASSES = _all_error_classes()


def _instance(cls: type[errors.ApplicationError]) -> errors.ApplicationError:
    if cls is errors.StaleVersion:
        return errors.StaleVersion(current=3)
    if cls is errors.RateLimited:
        return errors.RateLimited(retry_after=7)
    return cls()


def test_the_walk_finds_the_error_classes() -> None:
    assert {errors.InvalidInput, errors.NotFound, errors.StaleVersion, errors.InternalError} <= set(ERROR_CLASSES)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_has_a_row_of_real_codes(cls: type[errors.ApplicationError]) -> None:
    assert cls.code in errors.OUTCOMES, f"{cls.__name__} ({cls.code!r}) has no row in core.errors.OUTCOMES"
    outcome = errors.OUTCOMES[cls.code]
    assert 400 <= outcome.http_status <= 599
    if outcome.grpc_status is not None:
        assert outcome.grpc_status in grpc.StatusCode.__members__
        assert outcome.grpc_status not in {"OK", "UNKNOWN"}


def test_every_row_belongs_to_an_error_class() -> None:
    assert set(errors.OUTCOMES) == {cls.code for cls in ERROR_CLASSES}


def test_a_code_without_a_row_is_internal_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Unlisted(errors.ApplicationError):
        code = "unlisted"

    with caplog.at_level(logging.ERROR, logger="core.errors"):
        assert errors.outcome_of(Unlisted()) == errors.OUTCOMES[errors.InternalError.code]
    assert "'unlisted'" in caplog.text and "no row" in caplog.text


@pytest.fixture
def raising(monkeypatch: pytest.MonkeyPatch) -> Callable[[errors.ApplicationError], None]:
    """`raising(error)`: from now on the task read of every protocol raises `error`."""

    def install(error: errors.ApplicationError) -> None:
        def task_get(**_: Any) -> Any:
            raise error

        for module in ("api_rest.apis", "api_graphql.queries", "api_grpc.replies"):
            monkeypatch.setattr(f"{module}.task_get", task_get)
        # gRPC's GetTask reads the cached row first (api_grpc.replies); a miss goes on to task_get.
        monkeypatch.setattr("api_grpc.replies.task_get_row", lambda **_: None)

    return install


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_rest_answers_each_error_with_its_row(
    cls: type[errors.ApplicationError], api: Any, raising: Callable[[errors.ApplicationError], None]
) -> None:
    error = _instance(cls)
    raising(error)
    response = api.get(f"/api/v1/tasks/{uuid.uuid4()}", HTTP_ACCEPT="application/json")
    assert response.status_code == errors.OUTCOMES[cls.code].http_status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == cls.code and body["status"] == response.status_code
    assert body["title"] == HTTPStatus(response.status_code).phrase  # "Length Required", never "Error"
    assert body["detail"] == error.message
    if cls is errors.StaleVersion:
        assert body["current_version"] == 3
    if cls is errors.RateLimited:
        assert body["retry_after"] == 7 and response["Retry-After"] == "7"


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_graphql_answers_each_error_with_its_row(
    cls: type[errors.ApplicationError], client: Any, user: Any, raising: Callable[[errors.ApplicationError], None]
) -> None:
    from tests.conftest import access_token

    error = _instance(cls)
    raising(error)
    response = gql(
        client, "query($id: ID!) { task(id: $id) { id } }", {"id": str(uuid.uuid4())},
        HTTP_AUTHORIZATION=f"Bearer {access_token(user)}",
    )  # fmt: skip
    assert response.status_code == 200
    [graphql_error] = response.json()["errors"]
    expected = errors.OUTCOMES[cls.code].graphql_code
    if expected is None:  # an HTTP-transport error cannot come from a resolver: masked as a bug
        expected, message = "INTERNAL_SERVER_ERROR", "Internal server error."
    else:
        message = error.message
    assert graphql_error["extensions"]["code"] == expected
    assert graphql_error["message"] == message
    if cls is errors.StaleVersion:
        assert graphql_error["extensions"]["currentVersion"] == 3


@pytest.fixture
def stub(transactional_db: None, settings: Any) -> Iterator[pb_grpc.TaskServiceStub]:
    """A stub on a real channel to a real server in this process (as in tests/api_grpc/conftest.py)."""
    settings.GRPC_HEALTH_CHECK_INTERVAL = 3600
    running = build_server(host="127.0.0.1", port=0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield pb_grpc.TaskServiceStub(channel)
    finally:
        running.shutdown(0).wait(5)
        terminate_other_connections()


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_grpc_answers_each_error_with_its_row(
    cls: type[errors.ApplicationError],
    stub: pb_grpc.TaskServiceStub,
    user: Any,
    raising: Callable[[errors.ApplicationError], None],
) -> None:
    error = _instance(cls)
    raising(error)
    status_name = errors.OUTCOMES[cls.code].grpc_status
    if status_name is None or status_name == "INTERNAL":  # no such condition in gRPC, or a bug
        expected, code, message = grpc.StatusCode.INTERNAL, errors.InternalError.code, "Internal server error."
    else:
        expected, code, message = grpc.StatusCode[status_name], cls.code, error.message
    failure, trailers = fails(
        stub.GetTask, pb.GetTaskRequest(id=str(uuid.uuid4())), bearer(user), code=expected, error_code=code
    )
    assert failure.details() == message
    if cls is errors.StaleVersion:
        assert trailers["taskhub-current-version"] == "3"
    if cls is errors.RateLimited:
        assert trailers["retry-after"] == "7"
