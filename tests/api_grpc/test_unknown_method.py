"""A call to a method TaskService does not have: UNIMPLEMENTED, as grpcio answers it, and accounted as
every call (docs/operations.md, "Metrics" and "Logs"): counted under the fixed endpoint `unmatched`,
as REST counts an unknown URL, never under the name the client made up; one access line, its request
id in the trailers. Other services' unknown methods are grpcio's, as before.

Real calls on a real channel to the in-process server (tests/api_grpc/conftest.py), and the real
/metrics scrape."""

from __future__ import annotations

import logging
import uuid

import grpc
import pytest

from observability.logging import RequestContextFilter
from tests.api_grpc.helpers import TIMEOUT, trailers
from tests.observability.test_metrics import requests_delta, scrape

UNMATCHED = ("grpc", "POST", "unmatched", "UNIMPLEMENTED")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captured records carrying the request id, as the project's console handler adds it."""
    caplog.handler.addFilter(RequestContextFilter())
    caplog.set_level(logging.INFO, logger="taskhub.access")
    return caplog


def grpc_lines(logs: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.name == "taskhub.access" and getattr(r, "protocol", None) == "grpc"]


def test_an_unknown_method_is_unimplemented_counted_and_logged_once(
    channel: grpc.Channel, logs: pytest.LogCaptureFixture
) -> None:
    name = f"/tasks.v1.TaskService/NoSuch{uuid.uuid4().hex}"
    before = scrape()

    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(name)(b"", metadata=(("x-request-id", "unknown-method-1"),), timeout=TIMEOUT)

    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert raised.value.details() == "Method not found!"  # grpcio's own answer, unchanged
    assert trailers(raised.value)["x-request-id"] == "unknown-method-1"
    after = scrape()
    assert {key: n for key, n in requests_delta(before, after).items() if key[0] == "grpc"} == {UNMATCHED: 1}
    assert name[1:] not in after.text  # the client's name is no label value
    [line] = grpc_lines(logs)
    assert line.request_id == "unknown-method-1"  # type: ignore[attr-defined]
    assert (line.route, line.path, line.status) == ("unmatched", name, "UNIMPLEMENTED")  # type: ignore[attr-defined]
    assert line.user_id is None  # type: ignore[attr-defined]


def call(channel: grpc.Channel, kind: str, name: str) -> None:
    """One call of `kind` to method `name`, with raw bytes for messages."""
    if kind == "unary_unary":
        channel.unary_unary(name)(b"", timeout=TIMEOUT)
    elif kind == "unary_stream":
        list(channel.unary_stream(name)(b"", timeout=TIMEOUT))
    elif kind == "stream_unary":
        channel.stream_unary(name)(iter([b"a", b"b"]), timeout=TIMEOUT)
    else:
        list(channel.stream_stream(name)(iter([b"a"]), timeout=TIMEOUT))


def test_unknown_methods_of_every_kind_share_one_series(channel: grpc.Channel, logs: pytest.LogCaptureFixture) -> None:
    """Streaming calls too, and any number of made-up names: one series, whatever the client sends."""
    kinds = ["unary_unary", "unary_stream", "stream_unary", "stream_stream"] * 5
    before = scrape()

    for kind in kinds:
        with pytest.raises(grpc.RpcError) as raised:
            call(channel, kind, f"/tasks.v1.TaskService/Made{uuid.uuid4().hex}")
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED, kind

    after = scrape()
    assert {key: n for key, n in requests_delta(before, after).items() if key[0] == "grpc"} == {UNMATCHED: len(kinds)}
    assert len(grpc_lines(logs)) == len(kinds)


def test_another_services_unknown_method_is_left_to_grpcio(
    channel: grpc.Channel, logs: pytest.LogCaptureFixture
) -> None:
    before = scrape()

    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary("/grpc.health.v1.Health/NoSuchMethod")(b"", timeout=TIMEOUT)

    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert not {key for key in requests_delta(before, scrape()) if key[0] == "grpc"}
    assert not grpc_lines(logs)
