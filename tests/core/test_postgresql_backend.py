"""`core.postgresql.base` on its own: the state it keeps of a server's answers to connection
attempts, and the watchdog of waits for an answer, on a socket pair standing in for a connection's.
tests/tasks/test_database_lost.py drives both with a real server the network lost, or stopped."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
from django.test import override_settings

from core.postgresql.base import _INODE, Unanswered, Watchdog


def test_a_server_that_answers_is_attempted_by_every_thread() -> None:
    server = Unanswered()
    assert [server.before_attempt() for _ in range(3)] == [False, False, False]  # none of them a trial
    server.after_attempt(trial=False, started=time.monotonic(), waited_and_failed=False)
    assert not server.waiting


def test_after_an_attempt_that_waited_and_failed_one_attempt_at_a_time_is_made() -> None:
    server = Unanswered()
    server.after_attempt(trial=False, started=time.monotonic(), waited_and_failed=True)
    assert server.waiting
    assert server.before_attempt() is True  # the one attempt
    with pytest.raises(Unanswered.Refused):
        server.before_attempt()
    server.after_attempt(trial=True, started=time.monotonic(), waited_and_failed=True)  # no answer again
    assert server.waiting and not server.trying
    assert server.before_attempt() is True  # the next one may go
    server.after_attempt(trial=True, started=time.monotonic(), waited_and_failed=False)
    assert not server.waiting and not server.trying
    assert server.before_attempt() is False


def test_a_failure_begun_before_the_server_answered_again_does_not_count() -> None:
    server = Unanswered()
    server.after_attempt(trial=False, started=time.monotonic(), waited_and_failed=True)
    trial_began = time.monotonic()
    assert server.before_attempt() is True
    # Meanwhile another attempt (the readiness check's) connects, or is refused at once.
    server.after_attempt(trial=False, started=time.monotonic(), waited_and_failed=False)
    assert not server.waiting
    # The trial, begun before that answer, fails having waited: the server did answer since.
    server.after_attempt(trial=True, started=trial_began, waited_and_failed=True)
    assert not server.waiting and not server.trying
    # A failure that begins after the last answer counts again.
    server.after_attempt(trial=False, started=time.monotonic(), waited_and_failed=True)
    assert server.waiting


class Connection:
    """What the watchdog needs of a psycopg connection: the descriptor of its socket, and the inode
    of that socket, kept when it connected."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        setattr(self, _INODE, os.fstat(sock.fileno()).st_ino)

    def fileno(self) -> int:
        return self.sock.fileno()


@pytest.fixture
def ours() -> Iterator[socket.socket]:
    """The client's end of a connection whose server never answers (the other end, kept open)."""
    client, server = socket.socketpair()
    with client, server:
        client.settimeout(5)
        yield client


def shut_down_after(sock: socket.socket) -> float:
    """Wait for an answer on `sock`: how long until it ended, which must be by a shutdown (no data)."""
    started = time.monotonic()
    assert sock.recv(1) == b""  # the end of the stream, not the 5 s timeout (which raises)
    return time.monotonic() - started


@override_settings(DATABASE_STATEMENT_TIMEOUT_MS=200, DATABASE_CONNECT_TIMEOUT=0)
def test_a_wait_past_the_statement_and_connect_timeouts_has_its_socket_shut_down(ours: socket.socket) -> None:
    watchdog = Watchdog()
    key = watchdog.watch(Connection(ours))
    took = shut_down_after(ours)
    watchdog.done(key)  # as the waiting thread does when its call fails: nothing left to end
    assert 0.15 <= took < 1.5, took
    assert not watchdog.waits


@override_settings(DATABASE_STATEMENT_TIMEOUT_MS=200, DATABASE_CONNECT_TIMEOUT=0)
def test_a_wait_that_ends_in_time_is_left_alone(ours: socket.socket) -> None:
    watchdog = Watchdog()
    watchdog.done(watchdog.watch(Connection(ours)))
    time.sleep(0.5)
    ours.settimeout(0.3)
    with pytest.raises(TimeoutError):  # still open: nothing arrives, and nothing ended it
        ours.recv(1)


def test_a_wait_with_an_earlier_deadline_than_the_one_slept_until_wakes_the_watchdog(ours: socket.socket) -> None:
    client, server = socket.socketpair()
    with client, server:
        watchdog = Watchdog()
        with override_settings(DATABASE_STATEMENT_TIMEOUT_MS=60_000, DATABASE_CONNECT_TIMEOUT=0):
            first = watchdog.watch(Connection(client))
        time.sleep(0.2)  # the watchdog asleep until a minute from now
        with override_settings(DATABASE_STATEMENT_TIMEOUT_MS=200, DATABASE_CONNECT_TIMEOUT=0):
            watchdog.watch(Connection(ours))
        assert shut_down_after(ours) < 1.5
        assert first in watchdog.waits  # its own deadline is still to come
        watchdog.done(first)


@override_settings(DATABASE_STATEMENT_TIMEOUT_MS=0)
def test_with_no_statement_timeout_nothing_is_watched(ours: socket.socket) -> None:
    watchdog = Watchdog()
    assert watchdog.watch(Connection(ours)) is None
    assert watchdog.thread is None


@override_settings(DATABASE_STATEMENT_TIMEOUT_MS=200, DATABASE_CONNECT_TIMEOUT=0)
def test_a_descriptor_that_is_no_longer_the_connection_s_socket_is_left_alone(ours: socket.socket) -> None:
    """libpq closed the connection's socket and the number went to another one: not shut down."""
    other = Connection(ours)
    setattr(other, _INODE, -1)  # the socket it connected with is gone
    watchdog = Watchdog()
    watchdog.watch(other)
    time.sleep(0.6)
    assert not watchdog.waits  # its deadline passed
    ours.settimeout(0.3)
    with pytest.raises(TimeoutError):  # still open
        ours.recv(1)
