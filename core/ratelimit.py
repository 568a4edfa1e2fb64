"""Fixed-window rate limits shared by every protocol (docs/architecture.md, "Rate limits").

`hit(scope, ident)` counts one request against every window of a scope ("anon", "user", "token",
"login_user") and says whether it may go on; `check_login` is the one rule of password logins.
Counters live in the cache: with Redis, one pipelined round trip
(INCR + EXPIRE NX per window) that every process shares atomically; with the local-memory cache,
add + incr under its lock. If the cache fails the request is let through (fail open), logged and
counted: an outage of Redis must not take the API down with it.

django-ratelimit is not used: it works on Django HttpRequests only (gRPC has none) and spends two
cache round trips per window.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from core.cache import redis_script, safe_cache
from core.errors import RateLimited
from observability import metrics
from observability.switches import KeptSetting, Switch

logger = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    seconds: int

    @classmethod
    def parse(cls, rate: str) -> Window:
        """Parse "60/m" (also s, h, d, or a number of seconds: "100/30")."""
        count, _, period = rate.strip().partition("/")
        seconds = _UNITS.get(period[:1]) if period and not period.isdigit() else int(period or 0)
        if not count.isdigit() or not seconds:
            raise ValueError(f"Bad rate {rate!r}; expected e.g. '60/m'.")
        return cls(limit=int(count), seconds=seconds)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit, for the most restrictive window (what RateLimit headers show)."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until that window resets
    retry_after: int  # seconds until a rejected client may try again (0 when allowed)


ALLOW_ALL = Decision(allowed=True, limit=0, remaining=0, reset=0, retry_after=0)


_RATE_LIMITS_ON = Switch("RATE_LIMITS_ENABLED")


def enabled() -> bool:
    """RATE_LIMITS_ENABLED: a caller may skip the work of naming whom to count while it is off."""
    return _RATE_LIMITS_ON()


def _parsed(rates: dict[str, list[str]]) -> dict[str, tuple[Window, ...]]:
    return {scope: tuple(Window.parse(rate) for rate in scope_rates) for scope, scope_rates in rates.items()}


# Every scope's windows, parsed from RATE_LIMITS when first needed (a malformed rate in any scope
# fails every count, of every scope, until it is fixed), and again after a change.
_WINDOWS = KeptSetting("RATE_LIMITS", _parsed)
_PROXY_HOPS = KeptSetting("TRUSTED_PROXY_COUNT", int)


def windows(scope: str) -> tuple[Window, ...]:
    return _WINDOWS()[scope]


def hit(scope: str, ident: str) -> Decision:
    """Count one request of `ident` (a user id or client IP) in `scope` and decide."""
    if not _RATE_LIMITS_ON():
        return ALLOW_ALL
    now = time.time()
    scope_windows = windows(scope)
    keys = [(f"rl:{scope}:{ident}:{w.seconds}:{int(now // w.seconds)}", w) for w in scope_windows]
    if safe_cache.resting:  # the cache server just failed: do not wait on it once per request
        metrics.RATE_LIMIT_ERRORS.inc()
        return ALLOW_ALL
    try:
        counts = _increment(keys)
    except Exception:
        metrics.RATE_LIMIT_ERRORS.inc()
        safe_cache.record_fault("rate limit", keys[0][0])
        return ALLOW_ALL

    # When the next request could pass: once every window it would find full has reset. A refused
    # request counts in every window too, so a longer window may be full while a shorter one refused.
    reopens = 0
    # The window the RateLimit headers describe, as (_strictness, limit, remaining, reset): plain
    # values, one Decision made at the end (a frozen dataclass costs one call per field to make).
    strictest: tuple[tuple[bool, int, int], int, int, int] | None = None
    for (_, window), count in zip(keys, counts, strict=True):
        reset = math.ceil((int(now // window.seconds) + 1) * window.seconds - now)
        if count >= window.limit:
            reopens = max(reopens, reset)
        remaining = max(window.limit - count, 0)
        strictness = _strictness(count <= window.limit, remaining, reset)
        if strictest is None or strictness > strictest[0]:
            strictest = (strictness, window.limit, remaining, reset)
    if strictest is None:  # a scope without windows
        return ALLOW_ALL
    (refused, _, _), limit, remaining, reset = strictest
    if refused:
        metrics.RATE_LIMITED.labels(scope).inc()
    return Decision(
        allowed=not refused, limit=limit, remaining=remaining, reset=reset, retry_after=reopens if refused else 0
    )


def hit_caller(actor_id: object | None, address: str) -> Decision:
    """The rule every protocol follows: an authenticated caller counts per user ("user" scope), anyone
    else, refused credentials included, per client address ("anon" scope)."""
    if actor_id is not None:
        return hit("user", f"user:{actor_id}")
    return hit("anon", f"ip:{address}")


def _strictness(allowed: bool, remaining: int, reset: int) -> tuple[bool, int, int]:
    """Orders windows as the RateLimit headers choose among them (the greater, the stricter): a
    refusing window before one that allows, then the fewer requests left, then the later reset (of
    two windows with nothing left, the one that gives its quota back last)."""
    return (not allowed, 0 if not allowed else -remaining, reset)


def _stricter(a: Decision, b: Decision) -> bool:
    """Whether `a`'s window is the one the RateLimit headers should describe rather than `b`'s."""
    return _strictness(a.allowed, a.remaining, a.reset) > _strictness(b.allowed, b.remaining, b.reset)


# Every window's INCR and EXPIRE NX (the first hit of a window starts its clock) in one command, so
# one reply is read and parsed instead of a pipeline's two per window. redis-py's Script sends it by
# its digest (EVALSHA), and loads it again (SCRIPT LOAD) when the server does not know it (a restart).
_INCREMENT = """
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = redis.call('INCR', key)
    redis.call('EXPIRE', key, ARGV[i], 'NX')
end
return counts
"""


def _increment(keys: list[tuple[str, Window]]) -> list[int]:
    backend = safe_cache.backend
    # core.redis_cache.RedisClient runs the script on the thread's held connection; another
    # django-redis client runs it through redis-py's Script.
    run_script: Any = getattr(getattr(backend, "client", None), "run_script", None)
    if run_script is None and (redis := _redis_client(backend)) is not None:
        run_script = lambda script, keys, args: script(keys=keys, args=args, client=redis)  # noqa: E731
    if run_script is not None:
        redis_keys = [backend.make_key(key) for key, _ in keys]
        counts = run_script(redis_script(backend, _INCREMENT), redis_keys, [window.seconds for _, window in keys])
        return [int(n) for n in counts]
    counts = []
    for key, window in keys:
        backend.add(key, 0, timeout=window.seconds)
        counts.append(int(backend.incr(key)))
    return counts


def _redis_client(backend: Any) -> Any:
    try:
        from django_redis.cache import RedisCache
    except ImportError:  # pragma: no cover - django-redis is a base requirement
        return None
    if isinstance(backend, RedisCache):
        return backend.client.get_client(write=True)
    return None


def client_ip(remote_addr: str | None, forwarded_for: str | None) -> str:
    """The client address: the socket peer, or with TRUSTED_PROXY_COUNT = n, the address the
    outermost trusted proxy saw (n-th entry from the right of X-Forwarded-For). Entries left of it
    are the client's own claims and are never used, so forging the header changes nothing."""
    hops = _PROXY_HOPS()
    if hops and forwarded_for:
        entries = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if len(entries) >= hops:
            return entries[-hops]
    return remote_addr or "unknown"


# -- password logins -----------------------------------------------------------------------------------

LOGIN_IP_SCOPE = "token"  # the token endpoints' per-address counter: every password login shares it
LOGIN_USER_SCOPE = "login_user"


def check_login(request: Any, username: str | None) -> None:
    """Count one password attempt against the client address (scope "token", the same counter as
    the token endpoints) and against the username (scope "login_user"), before the password is
    checked; raise RateLimited when either is over its limit, whatever the password.

    `request` is any object with Django's `META` (an HttpRequest, or DRF's Request, which passes
    `META` through). A request the token endpoints' throttle already counted in scope "token"
    (`request.rate_limit_scope`) is not counted per address twice. The decision is left on the
    request as `rate_limit` for the RateLimit-* headers when nothing counted it before.
    (docs/architecture.md, "Rate limits")
    """
    decisions = []
    if getattr(request, "rate_limit_scope", None) != LOGIN_IP_SCOPE:
        ip = client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
        decisions.append(hit(LOGIN_IP_SCOPE, f"ip:{ip}"))
    decisions.append(hit(LOGIN_USER_SCOPE, login_user_ident(username or "")))
    decision = decisions[0]
    for candidate in decisions[1:]:
        if _stricter(candidate, decision):
            decision = candidate
    if getattr(request, "rate_limit", None) is None and decision.limit:
        request.rate_limit = decision
    if not decision.allowed:
        raise RateLimited(retry_after=decision.retry_after)


def login_user_ident(username: str) -> str:
    """Usernames differ only in case for Django's default backend lookups of most databases, and come
    from the client: the key holds a digest of the case-folded name, bounded and free of odd bytes."""
    return "user:" + hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
