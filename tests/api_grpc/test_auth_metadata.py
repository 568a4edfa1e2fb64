"""Credentials in the call's metadata, sent more than once: refused, never one of them picked.

gRPC lets a client repeat a metadata key; REST and GraphQL get a repeated header joined into one
value by granian, which then fails as a credential (401). Which of two credentials would count is a
guess, and the other one would never be checked (docs/api/grpc.md, "Metadata")."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from core.auth import api_key_create
from tests.api_grpc.helpers import fails, ok_with_trailers
from tests.conftest import access_token

pytestmark = pytest.mark.django_db(transaction=True)

BASIC = ("authorization", "Basic Zm9vOmJhcg==")


@pytest.mark.parametrize("basic_first", [True, False], ids=["basic-first", "bearer-first"])
def test_two_authorization_entries_are_refused(stub: Any, user: Any, basic_first: bool) -> None:
    entries = [BASIC, ("authorization", f"Bearer {access_token(user)}")]
    if not basic_first:
        entries.reverse()
    error, found = fails(stub.ListTasks, pb.ListTasksRequest(), tuple(entries), code=grpc.StatusCode.UNAUTHENTICATED)
    assert found["taskhub-error-code"] == "not_authenticated"
    assert "`authorization` once" in error.details()


def test_two_valid_bearer_tokens_are_refused_too(stub: Any, user: Any, other_user: Any) -> None:
    entries = (
        ("authorization", f"Bearer {access_token(user)}"),
        ("authorization", f"Bearer {access_token(other_user)}"),
    )
    fails(stub.ListTasks, pb.ListTasksRequest(), entries, code=grpc.StatusCode.UNAUTHENTICATED)


def test_two_api_key_entries_are_refused(stub: Any, user: Any) -> None:
    _, raw = api_key_create(user=user, name="k")
    for entries in ((("x-api-key", "th_000000000000_garbage"), ("x-api-key", raw)), (("x-api-key", raw),) * 2):
        error, _ = fails(stub.ListTasks, pb.ListTasksRequest(), entries, code=grpc.StatusCode.UNAUTHENTICATED)
        assert "`x-api-key` once" in error.details()
    ok_with_trailers(stub.ListTasks, pb.ListTasksRequest(), (("x-api-key", raw),))  # once, it works


def test_a_stream_with_two_authorization_entries_is_refused(stub: Any, user: Any) -> None:
    entries = (BASIC, ("authorization", f"Bearer {access_token(user)}"))  # the last one valid
    with pytest.raises(grpc.RpcError) as info:
        next(iter(stub.WatchTasks(pb.WatchTasksRequest(), metadata=entries, timeout=10)))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, info.value.details()


def test_a_repeated_request_id_gets_a_new_one_as_over_http(stub: Any, user: Any) -> None:
    """granian joins two X-Request-ID headers with ", ", which fails the id's pattern: a new id. The
    same here, rather than one of the two kept."""
    metadata = (
        ("authorization", f"Bearer {access_token(user)}"),
        ("x-request-id", "first"),
        ("x-request-id", "second"),
    )
    _, found = ok_with_trailers(stub.ListTasks, pb.ListTasksRequest(), metadata)
    assert found["x-request-id"] not in {"first", "second", "first, second"}
    _, found = ok_with_trailers(stub.ListTasks, pb.ListTasksRequest(), metadata[:2])
    assert found["x-request-id"] == "first"
