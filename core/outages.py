"""Expected outages of a dependency (the database, the cache), logged once per outage, not per request.

A request that meets an outage is answered already (503 with `Retry-After`, or served without the
cache), so one WARNING line when the outage starts, a reminder every REMIND_EVERY seconds while it
lasts (with the count), and one INFO line when the dependency answers again say all the log needs
to. Unexpected errors (a 500) are still logged at ERROR by whoever meets them.

The state is per process: each process logs its own view of an outage once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)

REMIND_EVERY = 60.0  # seconds between two WARNING lines of one outage


@dataclass(slots=True)
class _Outage:
    since: float
    logged: float
    failures: int


_lock = threading.Lock()
_outages: dict[str, _Outage] = {}


def unavailable(component: str, message: str, *, exc_info: BaseException | None = None) -> None:
    """Note a failure of `component`: `message` at WARNING if it starts an outage, again with the
    count if the last line is REMIND_EVERY seconds old, else nothing."""
    now = time.monotonic()
    with _lock:
        outage = _outages.get(component)
        if outage is None:
            _outages[component] = _Outage(since=now, logged=now, failures=1)
        else:
            outage.failures += 1
            if now - outage.logged < REMIND_EVERY:
                return
            outage.logged = now
    if outage is None:
        logger.warning("%s", message, exc_info=exc_info)
    else:
        logger.warning(
            "%s (%s unavailable for %.0f s, %d failures)", message, component, now - outage.since, outage.failures
        )


def available(component: str) -> None:
    """Note that `component` answered: ends its outage, if there was one, with an INFO line."""
    if component not in _outages:  # the common case, without the lock
        return
    with _lock:
        outage = _outages.pop(component, None)
    if outage is not None:
        logger.info(
            "%s available again after %.1f s (%d failures)", component, time.monotonic() - outage.since, outage.failures
        )


def is_down(component: str) -> bool:
    return component in _outages


def reset() -> None:
    """Forget every outage (tests)."""
    with _lock:
        _outages.clear()
