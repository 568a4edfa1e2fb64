import time

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from core import ratelimit
from core.ratelimit import Window, client_ip
from tests.core.test_cache import DEAD_REDIS


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("60/m", Window(60, 60)), ("1000/h", Window(1000, 3600)), ("5/s", Window(5, 1)), ("7/30", Window(7, 30))],
)
def test_rates_parse(rate: str, expected: Window) -> None:
    assert Window.parse(rate) == expected


@pytest.mark.parametrize("rate", ["", "x/m", "5/fortnight", "5/"])
def test_bad_rates_are_refused(rate: str) -> None:
    with pytest.raises(ValueError):
        Window.parse(rate)


@override_settings(RATE_LIMITS_ENABLED=True, RATE_LIMITS={"anon": ["3/m", "5/h"]})
def test_the_strictest_window_decides() -> None:
    decisions = [ratelimit.hit("anon", "ip:1.2.3.4") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[0].limit == 3
    assert 0 < decisions[3].retry_after <= 60
    assert ratelimit.hit("anon", "ip:5.6.7.8").allowed  # another client has its own counters


@override_settings(RATE_LIMITS_ENABLED=True, RATE_LIMITS={"anon": ["100/m", "2/h"]})
def test_the_hour_window_limits_too() -> None:
    decisions = [ratelimit.hit("anon", "ip:9.9.9.9") for _ in range(3)]
    to_the_hour = 3600 - time.time() % 3600
    assert [d.allowed for d in decisions] == [True, True, False]
    # The hour window refused: its limit, and a wait until the next whole hour (not the minute's; under
    # a minute itself in the last minute of an hour, which a `> 60` once failed on).
    assert decisions[2].limit == 2 and abs(decisions[2].retry_after - to_the_hour) <= 2


class Clock:
    """The rate limiter's clock, 10 s into an hour (and a minute), moved by the test."""

    def __init__(self) -> None:
        self.now = (time.time() // 3600 + 1) * 3600 + 10

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(ratelimit, "time", clock)
    return clock


@override_settings(RATE_LIMITS_ENABLED=True, RATE_LIMITS={"anon": ["3/m", "4/h"]})
def test_retry_after_waits_for_every_window_the_next_request_would_find_full(clock: Clock) -> None:
    """The minute refuses the fourth request, which counts in the hour too and fills it: waiting for
    the minute alone would be refused again, so Retry-After is the hour's."""
    decisions = [ratelimit.hit("anon", "ip:1.2.3.4") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[3].retry_after == 3590

    clock.now += 50  # the minute's reset, which Retry-After once said
    assert ratelimit.hit("anon", "ip:5.6.7.8").allowed  # another address has its own counters
    assert not ratelimit.hit("anon", "ip:1.2.3.4").allowed
    clock.now += 3540
    assert ratelimit.hit("anon", "ip:1.2.3.4").allowed


@override_settings(RATE_LIMITS_ENABLED=True, RATE_LIMITS={"anon": ["2/m", "2/h"]})
def test_of_two_windows_with_nothing_left_the_headers_describe_the_one_that_resets_last(clock: Clock) -> None:
    decisions = [ratelimit.hit("anon", "ip:1.2.3.4") for _ in range(3)]

    assert (decisions[1].allowed, decisions[1].remaining, decisions[1].reset) == (True, 0, 3590)
    assert (decisions[2].allowed, decisions[2].reset, decisions[2].retry_after) == (False, 3590, 3590)


@pytest.mark.redis
@override_settings(RATE_LIMITS_ENABLED=True, RATE_LIMITS={"anon": ["1/m"]})
def test_rate_limits_fail_open_when_redis_is_down() -> None:
    before = REGISTRY.get_sample_value("api_rate_limit_errors_total") or 0
    with override_settings(CACHES=DEAD_REDIS):
        assert all(ratelimit.hit("anon", "ip:1.1.1.1").allowed for _ in range(3))
    assert REGISTRY.get_sample_value("api_rate_limit_errors_total") == before + 3


@pytest.mark.redis
@override_settings(RATE_LIMITS_ENABLED=True, RATE_LIMITS={"anon": ["3/m", "5/h"]})
def test_the_counts_go_on_after_redis_forgets_the_script() -> None:
    if time.time() % 60 > 58:
        time.sleep(2.5)  # both hits in one minute window
    first = ratelimit.hit("anon", "ip:4.4.4.4")
    client = ratelimit._redis_client(ratelimit.safe_cache.backend)
    client.script_flush()  # as after a restart: EVALSHA answers NOSCRIPT, and the script is loaded again

    second = ratelimit.hit("anon", "ip:4.4.4.4")

    assert (first.remaining, second.remaining) == (2, 1)
    key = ratelimit.safe_cache.backend.make_key(f"rl:anon:ip:4.4.4.4:60:{int(time.time() // 60)}")
    assert 0 < client.ttl(key) <= 60  # the first hit of the window started its clock


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "6.6.6.6", "10.0.0.1"),  # no trusted proxy: the header is the client's own claim
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # one proxy: the address it saw
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.1"),  # fewer entries than proxies: trust nothing
    ],
)
def test_client_ip(settings, hops: int, forwarded: str, expected: str) -> None:
    settings.TRUSTED_PROXY_COUNT = hops
    assert client_ip("10.0.0.1", forwarded) == expected
