"""The state `core.postgresql.base` keeps of a server's answers to connection attempts, on its own;
tests/tasks/test_database_lost.py drives it with a server the network lost."""

from __future__ import annotations

import time

import pytest

from core.postgresql.base import Unanswered


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
