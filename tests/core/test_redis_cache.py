"""core.redis_cache: django-redis' reads without the int() attempt on pickles, django-prometheus'
counters moved per read, and each thread's reads on a connection of its own, on a real Redis."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import time
from typing import Any

import pytest
from django.conf import settings
from django_prometheus.cache.metrics import (
    django_cache_get_fail_total,
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.redis_cache import RedisCache
from tests.faults import private_redis, redis_stall
from tests.live import free_port

pytestmark = pytest.mark.redis


def _backend(url: str, **options: Any) -> Any:
    return RedisCache(
        url, {"KEY_PREFIX": "test-redis-cache", "OPTIONS": {"CLIENT_CLASS": "core.redis_cache.RedisClient", **options}}
    )


@pytest.fixture
def backend() -> Any:
    cache = _backend(settings.REDIS_URL)
    yield cache
    cache.delete_many(["int", "negative", "pickled", "text", "big", "missing", "a", "b"])


def _count(metric: Any) -> float:
    return metric.labels(backend="redis")._value.get()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("int", 42),
        ("negative", -7),
        ("big", 2**70),  # pickled by django-redis: beyond what it stores as digits? either way, equal
        ("text", "12"),  # a string of digits stays a string
        ("pickled", ("row", 1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), ["a"], None, True)),
    ],
)
def test_values_read_back_as_they_were_stored(backend: Any, key: str, value: Any) -> None:
    backend.set(key, value)

    assert backend.get(key) == value
    assert type(backend.get(key)) is type(value)


def test_a_read_moves_django_prometheus_counters(backend: Any) -> None:
    backend.set("pickled", ("x",))
    gets, hits, misses = (
        _count(django_cache_get_total),
        _count(django_cache_hits_total),
        _count(django_cache_misses_total),
    )

    backend.get("pickled")
    backend.get("missing", "fallback")

    assert _count(django_cache_get_total) - gets == 2
    assert _count(django_cache_hits_total) - hits == 1
    assert _count(django_cache_misses_total) - misses == 1


def test_many_values_read_back_in_one_mget_on_the_thread_s_connection(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`get_many` sends one MGET on the held connection, as `get` sends GET, and answers what it found,
    each value as it was stored, the missing key left out."""
    values = {"int": 42, "text": "12", "pickled": ("row", 1, ["a"], None)}
    backend.set_many(values)
    connection = backend.client.get_client(write=False).connection
    sent: list[tuple[Any, ...]] = []
    real = connection.send_command
    monkeypatch.setattr(connection, "send_command", lambda *args, **kw: sent.append(args) or real(*args, **kw))

    found = backend.get_many(["int", "missing", "text", "pickled"])

    assert found == values and type(found["int"]) is int and type(found["text"]) is str
    assert sent == [("MGET", *(backend.make_key(key) for key in ("int", "missing", "text", "pickled")))]


# -- each thread's reads on a connection of its own ------------------------------------------------------


def _reader_id(backend: Any) -> int:
    """The Redis connection id of this thread's reads (CLIENT ID, sent on that connection)."""
    return int(backend.client.get_client(write=False).client_id())


def _in_thread(function: Any) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join(10)
    return result[0]


def test_a_thread_reads_on_one_connection_of_its_own(backend: Any) -> None:
    backend.set("a", "first")
    mine = _reader_id(backend)

    assert backend.get("a") == "first"
    assert _reader_id(backend) == mine  # the same connection, read after read
    other = _in_thread(lambda: (backend.get("a"), _reader_id(backend)))
    assert other[0] == "first"
    assert other[1] != mine


def test_writes_keep_django_redis_shared_client(backend: Any) -> None:
    reader = backend.client.get_client(write=False)
    writer = backend.client.get_client(write=True)

    assert writer is not reader
    assert writer is backend.client._clients[0]  # django-redis' own client of the server
    assert writer.connection is None  # ... which takes a pooled connection per command
    assert reader.connection is not None


def _child_read(backend: Any, results: Any) -> None:
    results.put((backend.get("a"), _reader_id(backend)))


def test_a_forked_child_reads_on_a_connection_of_its_own(backend: Any) -> None:
    """A worker forked after its parent read (a pre-forking server) must not share the parent's socket."""
    backend.set("a", "from the parent")
    parent = _reader_id(backend)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child_read, args=(backend, results))
    child.start()
    value, child_id = results.get(timeout=20)
    child.join(20)

    assert (value, child.exitcode) == ("from the parent", 0)
    assert child_id != parent
    assert _reader_id(backend) == parent  # the parent's connection is untouched


def test_a_connection_the_server_closed_is_reconnected_at_the_next_read(backend: Any) -> None:
    backend.set("a", "still here")
    closed = _reader_id(backend)
    backend.client.get_client(write=True).client_kill_filter(_id=closed)  # as a restart or idle timeout would

    assert backend.get("a") == "still here"  # not a fault: tried once more on a new connection
    assert _reader_id(backend) != closed


def test_an_error_reply_fails_the_read_and_keeps_the_connection(backend: Any) -> None:
    """GET of a key that holds no string answers an error: raised as django-redis raises a failed
    command's cause, and the connection, whose answer was read in full, serves the next read."""
    backend.set("a", "a string")
    reader = _reader_id(backend)
    writer = backend.client.get_client(write=True)
    writer.rpush(backend.make_key("b"), "not a string")

    with pytest.raises(ResponseError, match="WRONGTYPE"):
        backend.get("b")
    assert backend.get("a") == "a string"
    assert _reader_id(backend) == reader


@pytest.mark.parametrize("read", ["get", "get_many"])
def test_a_read_that_timed_out_leaves_no_answer_behind(read: str) -> None:
    """A read whose answer comes after the timeout must not hand that answer to the next read."""
    with private_redis() as url:
        backend = _backend(url, SOCKET_TIMEOUT=0.2)
        backend.set("a", "answer of a")
        backend.set("b", "answer of b")
        assert backend.get("b") == "answer of b"  # this thread's connection is open
        stall = redis_stall(url, 1.5)
        time.sleep(0.3)  # DEBUG SLEEP has reached the server (a loaded machine may take a while to send it)

        with pytest.raises(RedisTimeoutError):  # django-redis raises the cause (IGNORE_EXCEPTIONS off)
            getattr(backend, read)("a" if read == "get" else ["a"])  # times out; its answer comes later
        stall.join(10)

        assert backend.get("b") == "answer of b"
        assert backend.get_many(["b"]) == {"b": "answer of b"}


def test_a_redis_that_refuses_connections_fails_the_read_as_a_command_would() -> None:
    """The first read of a thread connects; when that fails, the read fails as a failed command does
    (django-redis' ConnectionInterrupted, raised as its cause), which core.cache counts as a fault."""
    backend = _backend(f"redis://127.0.0.1:{free_port()}/0")
    gets, fails = _count(django_cache_get_total), _count(django_cache_get_fail_total)

    with pytest.raises(RedisConnectionError):
        backend.get("a")
    assert (_count(django_cache_get_total) - gets, _count(django_cache_get_fail_total) - fails) == (1, 1)
    with pytest.raises(RedisConnectionError):
        backend.get_many(["a", "b"])
