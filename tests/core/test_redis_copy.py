"""core.redis_copy: the process's copy of cached reads (CACHE_LOCAL_SECONDS), kept exact by Redis'
invalidation messages, on a real Redis server of the tests' own (its command counts are theirs).

`one` is a backend of this process with the copy on, as each request thread has one (Django gives
every thread a backend of its own; they share the process's copy). Writes by `other` (a backend
without a copy) stand for another process's: they reach `one` only through Redis' messages. Where a
process matters for real, a real one writes (redis-cli) or reads (a forked child); tests/
test_cache_copy_replicas.py runs the servers themselves."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core import outages, redis_copy
from core.cache import _BUMP_SCRIPT, SafeCache, redis_script
from core.redis_cache import RedisCache
from tests.faults import packets_lost, private_redis, redis_stall, wait_until

pytestmark = pytest.mark.redis

PREFIX = "copy-test"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture
def server(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.config_resetstat()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _fresh_copies() -> Iterator[None]:
    """Each test starts without copies or outages, and closes the listeners it started."""
    outages.reset()
    yield
    for copy in redis_copy._shared.values():
        copy.close()
    redis_copy._shared.clear()
    outages.reset()


def _backend(url: str, seconds: float = 30.0, **copy: Any) -> Any:
    local = {
        "seconds": seconds,
        "prefixes": ["task:", "tasks:"],
        "max_entries": 100,
        "retry_after": 0.2,
        "lease": 0.25,
        "ping_every": 0.1,
        "answer_within": 0.25,
        **copy,
    }
    return RedisCache(
        url,
        {"KEY_PREFIX": PREFIX, "OPTIONS": {"CLIENT_CLASS": "core.redis_cache.RedisClient", "LOCAL_COPY": local}},
    )


def _listening(backend: Any) -> Any:
    """`backend` once its copy's listener listens (it starts in the background at the first read)."""
    copy = backend.client._copy
    copy.lookup(backend.make_key("task:start"))
    assert wait_until(lambda: copy._listening is not None, timeout=5), "the listener did not start"
    return backend


@pytest.fixture
def one(url: str, server: redis.Redis) -> Any:
    return _listening(_backend(url))


def _plain(url: str) -> Any:
    """A backend without a copy."""
    return RedisCache(url, {"KEY_PREFIX": PREFIX, "OPTIONS": {"CLIENT_CLASS": "core.redis_cache.RedisClient"}})


@pytest.fixture
def other(url: str, server: redis.Redis) -> Any:
    return _plain(url)


def _calls(server: redis.Redis, command: str) -> int:
    """How many times the server has run `command` since the test began."""
    return int(server.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def _subscribed(server: redis.Redis, client_id: int | None) -> bool:
    return any(int(client["id"]) == client_id and int(client["sub"]) > 0 for client in server.client_list())


def test_a_copied_key_is_read_from_redis_once_then_from_the_copy(one: Any, server: redis.Redis) -> None:
    one.set("task:1", ("row", 1))

    assert [one.get("task:1") for _ in range(5)] == [("row", 1)] * 5
    assert _calls(server, "get") == 1
    assert one.get_many(["task:1"]) == {"task:1": ("row", 1)}  # every key in the copy: no MGET
    assert _calls(server, "mget") == 0


def test_every_thread_s_backend_shares_the_process_s_copy(url: str, one: Any, server: redis.Redis) -> None:
    one.set("task:1", "kept")
    assert one.get("task:1") == "kept"
    in_thread: list[Any] = []
    thread = threading.Thread(target=lambda: in_thread.append(_backend(url).get("task:1")))
    thread.start()
    thread.join(10)

    assert in_thread == ["kept"]
    assert _calls(server, "get") == 1
    assert len([c for c in server.client_list() if int(c["sub"]) > 0]) == 1  # one listener


def test_a_key_outside_the_copied_families_is_read_from_redis_every_time(one: Any, server: redis.Redis) -> None:
    one.set("rl:someone", 3)
    one.set("task:1", "kept")

    assert [one.get("rl:someone") for _ in range(3)] == [3, 3, 3]
    assert _calls(server, "get") == 3
    assert one.get_many(["task:1", "rl:someone"]) == {"task:1": "kept", "rl:someone": 3}
    assert one.get_many(["task:1", "rl:someone"]) == {"task:1": "kept", "rl:someone": 3}
    assert _calls(server, "mget") == 2


def test_a_miss_is_not_kept(one: Any, other: Any) -> None:
    assert one.get("task:absent") is None
    other.set("task:absent", "now here")

    assert one.get("task:absent") == "now here"


def test_another_process_s_write_reaches_the_copy(one: Any, other: Any, server: redis.Redis) -> None:
    other.set("task:1", "first")
    assert one.get("task:1") == "first"
    assert one.get("task:1") == "first"
    assert _calls(server, "get") == 1  # answered from the copy

    other.set("task:1", "second")

    assert wait_until(lambda: one.get("task:1") == "second", timeout=2)
    assert one.get_many(["task:1"]) == {"task:1": "second"}


def test_a_write_by_a_real_other_process_reaches_the_copy(one: Any, url: str) -> None:
    one.set("task:1", "cached")
    assert one.get("task:1") == "cached"

    subprocess.run(["redis-cli", "-u", url, "DEL", one.make_key("task:1")], check=True, capture_output=True)

    assert wait_until(lambda: one.get("task:1") is None, timeout=2)


def _bump(backend: Any, key: str) -> None:
    backend.client.run_script(redis_script(backend, _BUMP_SCRIPT), [backend.make_key(key)], [1])


GENERATION = "tasks:generation:all"
WRITES = {
    "set": lambda backend: backend.set(GENERATION, 9),
    "add after a delete": lambda backend: (backend.delete(GENERATION), backend.add(GENERATION, 9)),
    "set_many": lambda backend: backend.set_many({GENERATION: 9, "task:2": "b"}),
    "delete": lambda backend: backend.delete(GENERATION),
    "delete_many": lambda backend: backend.delete_many([GENERATION]),
    "delete_pattern": lambda backend: backend.delete_pattern("tasks:*"),
    "incr": lambda backend: backend.incr(GENERATION),
    "decr": lambda backend: backend.decr(GENERATION),
    "expire at once": lambda backend: backend.expire(GENERATION, 0),
    "expire at once, by keyword": lambda backend: backend.expire(GENERATION, timeout=0),
    "touch at once": lambda backend: backend.touch(GENERATION, timeout=0),
    "a script (a generation's bump)": lambda backend: _bump(backend, GENERATION),
    "clear": lambda backend: backend.clear(),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_this_process_reads_its_own_write_at_once(one: Any, server: redis.Redis, write: Any) -> None:
    """No waiting for the message: a write drops its keys from the copy once Redis has answered."""
    one.set(GENERATION, 1)
    assert one.get_many([GENERATION]) == {GENERATION: 1}
    assert one.get(GENERATION) == 1
    assert one.make_key(GENERATION) in one.client._copy._entries

    write(one)

    assert one.make_key(GENERATION) not in one.client._copy._entries  # before any message is read
    stored = server.get(one.make_key(GENERATION))
    expected = None if stored is None else one.client.decode(stored)
    assert expected != 1
    assert one.get(GENERATION) == expected
    assert one.get_many([GENERATION]).get(GENERATION) == expected


def test_a_read_a_message_overtook_is_not_kept(one: Any, other: Any, server: redis.Redis) -> None:
    """A GET on the wire when a message about its key is applied may return the value the message is
    about: its answer is not kept. Another key's message does not matter."""
    other.set("task:1", "old")
    other.set("task:2", "two")
    copy = one.client._copy
    key, elsewhere = one.make_key("task:1"), one.make_key("task:2")
    kept, marks = copy.lookup(key)
    kept_elsewhere, marks_elsewhere = copy.lookup(elsewhere)
    assert (kept, kept_elsewhere) == (None, None)

    copy.drop([key])  # as a message about task:1, applied while the reads' GETs were answered
    copy.keep({key: server.get(key)}, marks)
    copy.keep({elsewhere: server.get(elsewhere)}, marks_elsewhere)

    assert copy.lookup(key)[0] is None
    assert copy.lookup(elsewhere)[0] is not None


def test_of_two_reads_of_one_key_in_flight_only_the_last_one_sent_is_kept(one: Any, server: redis.Redis) -> None:
    one.set("task:1", "first")
    copy, key = one.client._copy, one.make_key("task:1")
    _, first = copy.lookup(key)
    _, second = copy.lookup(key)

    copy.keep({key: b"an older answer"}, first)
    assert key not in copy._entries
    copy.keep({key: server.get(key)}, second)  # this test's GET
    assert one.get("task:1") == "first"
    assert _calls(server, "get") == 1


def test_a_read_that_failed_leaves_no_mark_behind(one: Any, server: redis.Redis) -> None:
    server.rpush(one.make_key("task:list"), "not a string")

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        one.get("task:list")
    assert one.client._copy._marks == {}


def test_a_copy_closed_while_its_listener_starts_does_not_listen(url: str, server: redis.Redis) -> None:
    copy = _backend(url).client._copy
    copy.lookup("copy-test:1:task:start")  # starts the listener, in the background

    copy.close()

    time.sleep(0.5)
    assert copy._listening is None
    assert copy.listener_id is None
    assert not [client for client in server.client_list() if int(client["sub"]) > 0]


def test_a_flush_empties_the_copy(one: Any, server: redis.Redis) -> None:
    one.set("task:1", "cached")
    assert one.get("task:1") == "cached"

    server.flushdb()

    assert wait_until(lambda: one.get("task:1") is None, timeout=2)


def test_a_lost_listener_drops_the_copy_then_a_new_one_listens(
    one: Any, server: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.outages")
    one.set("task:1", "before")
    assert one.get("task:1") == "before"
    copy = one.client._copy
    lost = copy.listener_id
    assert _subscribed(server, lost)
    server.client_kill_filter(_id=lost)  # as a restart or a proxy's idle timeout would
    server.set(one.make_key("task:1"), one.client.encode("after"))  # its message has nowhere to go

    assert one.get("task:1") == "after"  # the closed listener is seen: the copy is not used
    assert copy.listener_id is None
    assert wait_until(lambda: (one.get("task:1"), copy.listener_id not in (None, lost))[1], timeout=3)
    assert _subscribed(server, copy.listener_id)
    one.get("task:1")  # kept again
    gets = _calls(server, "get")
    assert one.get("task:1") == "after"
    assert _calls(server, "get") == gets  # from the copy
    assert [(r.levelname, r.getMessage().split(" (")[0].split(" after")[0]) for r in caplog.records] == [
        ("WARNING", "the cache's invalidation messages stopped"),  # once, with why
        ("INFO", "the cache's invalidation messages available again"),
    ]


def test_no_redis_no_copy_and_no_error_beyond_the_read_s(server: redis.Redis) -> None:
    """A listener that cannot start keeps the copy off; the read fails as a read without a copy does."""
    with private_redis() as url:
        backend = _listening(_backend(url))
        backend.set("task:1", "x")
        assert backend.get("task:1") == "x"
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        backend.get("task:1")
    with pytest.raises(redis.ConnectionError):
        backend.get("task:1")
    assert time.monotonic() - started < 1.0  # refused at once: no wait on the listener's start
    assert wait_until(lambda: backend.client._copy._listening is None and not backend.client._copy._starting)


def test_an_entry_is_not_used_after_its_seconds(url: str, server: redis.Redis) -> None:
    backend = _listening(_backend(url, seconds=0.3))
    backend.set("task:1", "kept briefly")
    backend.get("task:1")
    backend.get("task:1")
    assert _calls(server, "get") == 1

    time.sleep(0.4)

    assert backend.get("task:1") == "kept briefly"
    assert _calls(server, "get") == 2


def test_a_full_copy_is_emptied(url: str, server: redis.Redis) -> None:
    backend = _listening(_backend(url, max_entries=3))
    for n in range(4):
        backend.set(f"task:{n}", n)
        backend.get(f"task:{n}")

    assert 1 <= len(backend.client._copy._entries) <= 3


def test_the_listener_pings_while_reads_come_and_keeps_listening(one: Any, server: redis.Redis) -> None:
    one.set("task:1", "kept")
    one.get("task:1")
    listener = one.client._copy.listener_id
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert one.get("task:1") == "kept"
        time.sleep(0.01)

    assert _calls(server, "ping") >= 3  # every 0.1 s, each answered
    assert one.client._copy.listener_id == listener
    assert _calls(server, "get") <= 3  # from the copy, but for a slow machine's late PONG or two


def test_after_a_silence_the_copy_answers_only_once_redis_has_answered_again(one: Any, server: redis.Redis) -> None:
    """Reads that stopped for longer than a PING and its answer: the first read after the silence goes
    to Redis (and sends a PING), the copy answers again once the PONG is in."""
    one.set("task:1", "kept")
    one.get("task:1")
    time.sleep(0.6)
    gets = _calls(server, "get")

    assert one.get("task:1") == "kept"
    assert _calls(server, "get") == gets + 1
    assert wait_until(lambda: _settled(one, server), timeout=2)


def _settled(backend: Any, server: redis.Redis) -> bool:
    """Whether the next read of task:1 is answered from the copy."""
    gets = _calls(server, "get")
    backend.get("task:1")
    return _calls(server, "get") == gets


def test_a_stalled_redis_ends_the_copy_within_a_ping_and_its_answer_time(url: str, one: Any) -> None:
    """While Redis does not answer, no message can come: the copy stops answering at most its lease
    (0.25 s here) after the last PING Redis answered was sent, and is dropped once a PING has gone
    unanswered for `answer_within` (0.25 s)."""
    one.set("task:1", "kept")
    copy, key = one.client._copy, one.make_key("task:1")
    assert one.get("task:1") == "kept"
    assert copy.lookup(key)[0] is not None

    stall = redis_stall(url, 2.0)
    while copy.lookup(key)[0] is not None:
        time.sleep(0.005)
    stopped = time.monotonic()
    assert wait_until(lambda: (copy.lookup(key), copy.listener_id)[1] is None, timeout=1.0)
    stall.join(10)

    assert copy._fresh_until <= stopped  # it stopped answering when its last answered PING was too old


def test_a_write_acknowledged_after_it_timed_out_on_a_stalled_redis_is_never_read_back_old(
    url: str, server: redis.Redis
) -> None:
    """A write whose command reached Redis after it stalled times out and is acknowledged (the cache
    never fails a request, core.cache) REDIS_SOCKET_TIMEOUT after it was sent. By then the copy has
    stopped answering, as a read from Redis would have failed over to the database: its last
    answered PING was sent before the write was, from as close to the stall as the test can."""
    # A writer as taskhub's: one try, given up after REDIS_SOCKET_TIMEOUT. (A URL of its own: django-redis
    # keeps one connection pool per URL, made with the options of the first backend that asks.)
    writer = RedisCache(
        f"{url}?client_name=writer",
        {"KEY_PREFIX": PREFIX, "OPTIONS": {"CLIENT_CLASS": "core.redis_cache.RedisClient", "SOCKET_TIMEOUT": 0.25}},
    )
    writer.set("task:1", "old")
    one = _listening(_backend(url, ping_every=0.2))  # the longer between PINGs, the more a wrong bound shows
    copy, key = one.client._copy, one.make_key("task:1")
    assert one.get("task:1") == "old"
    # The stall starts just after a PING was answered: the copy's freshest moment.
    assert wait_until(lambda: one.get("task:1") == "old" and copy._ping_sent is not None, timeout=2, interval=0.001)
    assert wait_until(lambda: one.get("task:1") == "old" and copy._ping_sent is None, timeout=2, interval=0.001)
    assert copy.lookup(key)[0] == one.client.encode("old")
    stall = redis_stall(url, 1.5)
    probe = redis.Redis.from_url(url, socket_timeout=0.1, retry=Retry(NoBackoff(), 0))
    try:
        assert wait_until(lambda: not _answers(probe), timeout=2, interval=0.002), "Redis did not stall"
        with pytest.raises(redis.TimeoutError):
            writer.delete("task:1")
        acknowledged = time.monotonic()

        assert copy._fresh_until <= acknowledged
        assert copy.lookup(key)[0] is None
    finally:
        stall.join(10)
        probe.close()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.TimeoutError:
        return False


class _Publisher(SafeCache):
    """`safe_cache` as another process has it, writing through `backend` (a copy of its own)."""

    def __init__(self, backend: Any) -> None:
        super().__init__()
        self._backend = backend

    @property
    def backend(self) -> Any:
        return self._backend


def _stale_reads(reader: Any, write: Any, seconds: float) -> tuple[int, int, list[float]]:
    """`write(n)` sets task:lost to 1, 2, 3 ... every 0.1 s in a thread (True once acknowledged);
    `reader` reads it meanwhile as fast as it can. Returns the writes acknowledged, the reads, and for
    each read older than the last write acknowledged before it began, how long after the
    acknowledgement of the version it missed."""
    acknowledged = [0.0]  # when version n was acknowledged, n >= 1
    done = threading.Event()

    def writes() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if write(len(acknowledged)):
                acknowledged.append(time.monotonic())
                time.sleep(0.1)
        done.set()

    thread = threading.Thread(target=writes)
    thread.start()
    reads, stale = 0, []
    while not done.is_set():
        last, began = len(acknowledged) - 1, time.monotonic()
        try:
            value = reader.get("task:lost")
        except redis.RedisError:
            continue
        reads += 1
        if value is not None and value < last:
            stale.append(began - acknowledged[value + 1])
    thread.join()
    return len(acknowledged) - 1, reads, stale


def _published_by(publisher: _Publisher) -> Any:
    """A write as taskhub's `safe_cache.replace` makes it, acknowledged only once Redis answered it and
    the copies' lease has passed (a failed command is not acknowledged here)."""

    def write(value: int) -> bool:
        try:
            publisher.backend.set("task:lost", value)
        except redis.RedisError:
            return False
        publisher._published()
        return True

    return write


@pytest.mark.skipif(os.geteuid() != 0, reason="drops packets with iptables, which needs root (as CI runs)")
def test_packets_from_redis_lost_at_random_never_make_the_copy_answer_an_acknowledged_write_s_old_value(
    url: str, server: redis.Redis
) -> None:
    """A network between Redis and the processes loses packets (5% of Redis', here). TCP sends a lost
    message again, and everything behind it on the listener's connection waits for it, the PINGs'
    answers included: the copy stops answering a lease after its last answered PING was sent, and a
    write is acknowledged a lease after Redis answered it, so no read that begins after a write was
    acknowledged answers the value before it. A lease of 0.1 s here (5 ms by default) so that a write
    that did not wait would show: without `_published`'s wait, 48,601 of 2.4 million reads were old.
    Without the copy each read asks Redis, which runs it after the last acknowledged write."""
    one = _listening(_backend(url, lease=0.1, ping_every=0.05))
    publisher = _Publisher(_backend(f"{url}?client_name=publisher", lease=0.1, ping_every=0.05))
    without = _plain(url)
    one.set("task:lost", 0)
    with packets_lost(urlsplit(url).port or 6379, "taskhub-test-redis-loss", probability=0.05):
        writes, reads, stale = _stale_reads(one, _published_by(publisher), seconds=8.0)
        gets = _calls(server, "get")
        writes_without, _, stale_without = _stale_reads(without, _published_by(_Publisher(without)), seconds=2.0)
    print(f"with the copy: {writes} writes, {reads} reads ({gets} from Redis), {len(stale)} old")

    assert writes >= 20 and gets < reads // 2  # the copy answered most reads while writes came
    assert stale == [], sorted(stale)[-5:]
    assert writes_without >= 5 and stale_without == []


def test_a_write_waits_for_the_copies_lease_once_however_many_keys_it_changes(url: str, server: redis.Redis) -> None:
    """With copies on, a write that changed a copied entry (`replace`, `bump`) returns a lease after
    Redis answered it (no copy answers for longer than that without having heard from Redis since);
    the `replace`s and `bump`s of one write (`publishing`) wait once, a lease after the last of them.
    Without copies, no wait."""
    publisher = _Publisher(_backend(url, lease=0.3, ping_every=0.1))
    plain = _Publisher(_plain(url))
    for warming in (publisher, plain):  # connections made and the script loaded before anything is timed
        with warming.publishing():
            warming.replace("task:0", "warm")
            warming.bump("tasks:generation:0")

    def timed(write: Any) -> float:
        started = time.monotonic()
        write()
        return time.monotonic() - started

    def one_write() -> None:
        with publisher.publishing():
            publisher.replace("task:2", "two")
            publisher.bump("tasks:generation:a")
            time.sleep(0.2)  # the last command's lease counts from its own answer
            publisher.bump("tasks:generation:b")

    def without() -> None:
        with plain.publishing():
            plain.replace("task:3", "three")
            plain.bump("tasks:generation:c")

    assert 0.3 <= timed(lambda: publisher.replace("task:1", "one")) < 0.55
    assert 0.3 <= timed(lambda: publisher.bump("tasks:generation:z")) < 0.55
    assert 0.5 <= timed(one_write) < 0.75  # 0.2 s of work, then one lease: not one per command (1.1 s)
    assert timed(without) < 0.25
    assert server.get(f"{PREFIX}:1:tasks:generation:b") is not None  # the bumps ran


def test_a_late_pong_stops_the_copy_a_lease_after_its_ping_without_losing_the_listener(
    url: str, server: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A PING answered later than the lease (Redis paused for less than `answer_within`): the copy stops
    answering a lease after the PING was sent, reads go to Redis meanwhile, and it answers again once
    a PING is answered in time; the listener stays, nothing is logged."""
    one = _listening(_backend(url, lease=0.05, ping_every=0.02, answer_within=2.0))
    copy, key = one.client._copy, one.make_key("task:1")
    one.set("task:1", "kept")
    assert wait_until(lambda: one.get("task:1") == "kept" and copy.lookup(key)[0] is not None, interval=0.001)
    listener = copy.listener_id

    stall = redis_stall(url, 1.0)
    assert wait_until(lambda: copy.lookup(key)[0] is None, timeout=2, interval=0.002), "the copy kept answering"
    stopped_during_the_stall = stall.is_alive()  # by the lease, not because Redis answered again
    stall.join(10)

    assert stopped_during_the_stall
    assert wait_until(lambda: one.get("task:1") == "kept" and copy.lookup(key)[0] is not None, interval=0.001)
    assert copy.listener_id == listener
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_pings_must_come_more_often_than_redis_has_to_answer_them(url: str) -> None:
    with pytest.raises(ValueError, match="ping_every"):
        _backend(url, lease=0.25, ping_every=0.25).client  # noqa: B018 - the client makes the copy


def test_a_listener_no_read_needed_for_a_while_is_dropped_quietly(
    url: str, server: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    backend = _listening(_backend(url, idle_after=0.3))
    copy = backend.client._copy
    first = copy.listener_id
    time.sleep(0.5)

    backend.get("task:1")

    assert copy.listener_id is None
    assert not _subscribed(server, first)
    assert wait_until(lambda: (backend.get("task:1"), copy.listener_id)[1] is not None)  # started again by a read
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_threads_reading_and_writing_at_once_read_the_last_write_and_keep_listening(
    url: str, one: Any, other: Any, server: redis.Redis
) -> None:
    """Four threads of one process, each with its backend, read and write their own keys while another
    process writes a key they all read: nobody waits on the listener, no thread reads a value older
    than one it has seen, and the listener survives."""
    one.set("task:shared", 0)
    one.get("task:shared")
    listener = one.client._copy.listener_id
    stop = time.monotonic() + 1.5
    problems: list[str] = []

    def work(n: int) -> None:
        backend, seen, mine = _backend(url), -1, f"task:{n}"
        for i in range(1_000_000):
            if time.monotonic() > stop:
                return
            if i % 7 == 0:
                backend.set(mine, i)
                if backend.get(mine) != i:
                    problems.append(f"thread {n} did not read its own write {i}")
            shared = backend.get("task:shared")
            if shared is None or shared < seen:
                problems.append(f"thread {n} read {shared} after {seen}")
            seen = shared if shared is not None else seen

    def write_shared() -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            other.set("task:shared", i)
            time.sleep(0.002)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)] + [threading.Thread(target=write_shared)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert problems == []
    assert one.client._copy.listener_id == listener
    assert one.get("task:shared") == other.get("task:shared")


def _child(backend: Any, results: Any) -> None:
    copy = backend.client._copy
    before = (len(copy._entries), copy._listening is None)
    first = backend.get("task:1")
    listening = wait_until(lambda: copy._listening is not None)
    backend.get("task:1")
    results.put((before, first, listening, len(copy._entries), copy.listener_id))


def test_a_forked_child_starts_empty_with_its_own_listener(one: Any, server: redis.Redis) -> None:
    one.set("task:1", "parent's")
    assert one.get("task:1") == "parent's"
    copy = one.client._copy
    parent_listener = copy.listener_id
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child, args=(one, results))
    child.start()
    before, first, listening, kept, child_listener = results.get(timeout=20)
    child.join(20)

    assert (before, first, listening, kept, child.exitcode) == ((0, True), "parent's", True, 1, 0)
    assert child_listener not in (None, parent_listener)
    assert copy.listener_id == parent_listener  # the parent's listener is untouched
    gets = _calls(server, "get")
    assert one.get("task:1") == "parent's"
    assert _calls(server, "get") == gets
    server.set(one.make_key("task:1"), one.client.encode("changed"))
    assert wait_until(lambda: one.get("task:1") == "changed", timeout=2)


def test_the_suite_s_own_cache_keeps_a_copy_exactly_when_its_environment_asks_for_one() -> None:
    """The passes of .ci/run with Redis prove something about the copy only if the suite's cache, the one
    every request of its tests reads, answers from a copy there (by default), and the pass with
    CACHE_LOCAL_SECONDS=0 only if it has none; the embedded default has none either."""
    from django.core.cache import cache

    asked = bool(os.environ.get("REDIS_URL")) and float(os.environ.get("CACHE_LOCAL_SECONDS") or 5) > 0
    copy = getattr(getattr(cache, "client", None), "_copy", None)  # the local-memory cache has no client
    if not asked:
        assert copy is None
        return
    assert copy is not None
    assert copy.seconds == float(os.environ.get("CACHE_LOCAL_SECONDS") or 5)
    cache.set("task:copy-guard", "kept")
    assert cache.get("task:copy-guard") == "kept"
    assert wait_until(lambda: copy._listening is not None, timeout=5), "the listener did not start"
    # Read from Redis once more, and kept, once a PING was answered within the lease (reads a lease
    # apart or more each find the copy lapsed).
    kept = cache.make_key("task:copy-guard")
    assert wait_until(lambda: cache.get("task:copy-guard") == "kept" and kept in copy._entries, interval=0.001)
