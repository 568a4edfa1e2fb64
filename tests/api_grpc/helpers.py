"""Helpers of the gRPC adapter tests: credentials as metadata, calls that return trailers, and real
faults (a database that cannot be reached, a row held locked by another connection).

Everything goes through real channels to a real `api_grpc.server.build_server` server; nothing of ours
is mocked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from core.auth import api_key_create
from tests.conftest import access_token
from tests.faults import (  # re-exported: the gRPC tests import every helper from here
    a_call_waits_on_a_lock,
    database_unreachable,
    row_locked,
    task_writes_blocked,
    terminate_other_connections,
    wait_until,
)

Metadata = tuple[tuple[str, str], ...]

TIMEOUT = 10.0  # seconds; every call has a deadline so that a bug cannot hang the suite
SERVICE = "tasks.v1.TaskService"
UNKNOWN_ID = "6f1c2a5e-0000-4000-8000-000000000404"


# -- credentials ---------------------------------------------------------------------------------------------


def bearer(user: Any) -> Metadata:
    """`authorization: Bearer <a real access token of user>`."""
    return (("authorization", f"Bearer {access_token(user)}"),)


def api_key(user: Any, **options: Any) -> Metadata:
    """`x-api-key: <a real API key of user>` (options: read_only, expires_at)."""
    _, raw = api_key_create(user=user, name="grpc test key", **options)
    return (("x-api-key", raw),)


# -- calls ---------------------------------------------------------------------------------------------------


def trailers(call: grpc.Call) -> dict[str, str]:
    return dict(call.trailing_metadata() or ())


def ok(method: Any, request: Any, metadata: Metadata = (), *, timeout: float = TIMEOUT, **kwargs: Any) -> Any:
    """The response of a call that must succeed."""
    return ok_with_trailers(method, request, metadata, timeout=timeout, **kwargs)[0]


def ok_with_trailers(
    method: Any, request: Any, metadata: Metadata = (), *, timeout: float = TIMEOUT, **kwargs: Any
) -> tuple[Any, dict[str, str]]:
    try:
        response, call = method.with_call(request, metadata=metadata, timeout=timeout, **kwargs)
    except grpc.RpcError as exc:  # pragma: no cover - the message says what went wrong
        pytest.fail(f"expected OK, got {exc.code()}: {exc.details()} {trailers(exc)}")
    return response, trailers(call)


def fails(
    method: Any,
    request: Any,
    metadata: Metadata = (),
    *,
    code: grpc.StatusCode,
    error_code: str | None = None,
    timeout: float = TIMEOUT,
    **kwargs: Any,
) -> tuple[grpc.RpcError, dict[str, str]]:
    """Make a call that must end with `code` (and, if given, trailer `taskhub-error-code: error_code`).

    Returns the error (a grpc.Call too) and its trailing metadata. No call may ever end UNKNOWN.
    """
    with pytest.raises(grpc.RpcError) as info:
        method.with_call(request, metadata=metadata, timeout=timeout, **kwargs)
    error = info.value
    found = trailers(error)
    assert error.code() != grpc.StatusCode.UNKNOWN, (error.details(), found)
    assert error.code() == code, (error.code(), error.details(), found)
    if error_code is not None:
        assert found.get("taskhub-error-code") == error_code, found
    return error, found


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


__all__ = [
    "a_call_waits_on_a_lock",
    "database_unreachable",
    "row_locked",
    "task_writes_blocked",
    "terminate_other_connections",
    "wait_until",
]
