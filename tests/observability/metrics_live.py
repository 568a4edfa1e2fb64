"""Helpers of the metrics tests: reading a /metrics scrape, and real server processes (gunicorn with
several workers, `manage.py grpcserver`, prometheus) started against the test database.

A scrape is parsed with prometheus_client's own text parser, so a test reads what any Prometheus reads.
Processes start in a session of their own and are ended with their whole process group (gunicorn's
workers too), also when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.live import test_database_url

REQUESTS = "api_requests_total"
DURATION_COUNT = "api_request_duration_seconds_count"
ACTIVE = "api_active_requests"
BASE_DIR = Path(settings.BASE_DIR)

LabelKey = tuple[str, str, str, str]  # protocol, method, endpoint, status


# -- reading a scrape ----------------------------------------------------------------------------------------


class Scrape:
    """One /metrics answer, parsed: `value(name, **labels)` and `series(...)` read it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = list(text_string_to_metric_families(text))
        self.samples = [sample for family in self.families for sample in family.samples]

    def matching(self, name: str, **labels: str) -> list[Any]:
        """The samples called `name` whose labels include `labels`."""
        return [
            sample
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 when there is none)."""
        return sum(sample.value for sample in self.matching(name, **labels))

    def series(self, *names: str) -> int:
        """How many samples (time series) the families `names` have; every family's when none is named."""
        return sum(len(family.samples) for family in self.families if not names or family.name in names)

    def family_names(self) -> set[str]:
        return {family.name for family in self.families}

    def requests(self) -> dict[LabelKey, float]:
        """api_requests_total by (protocol, method, endpoint, status)."""
        return {
            (s.labels["protocol"], s.labels["method"], s.labels["endpoint"], s.labels["status"]): s.value
            for s in self.matching(REQUESTS)
        }

    def durations(self) -> dict[tuple[str, str, str], float]:
        """api_request_duration_seconds_count by (protocol, method, endpoint)."""
        return {
            (s.labels["protocol"], s.labels["method"], s.labels["endpoint"]): s.value
            for s in self.matching(DURATION_COUNT)
        }

    def active(self) -> dict[str, float]:
        return {s.labels["protocol"]: s.value for s in self.matching(ACTIVE)}

    def label_values(self) -> set[str]:
        return {value for sample in self.samples for value in sample.labels.values()}


def delta(before: Mapping[Any, float], after: Mapping[Any, float]) -> dict[Any, float]:
    """What changed between two readings (keys whose value did not change are left out)."""
    keys = set(before) | set(after)
    return {key: after.get(key, 0) - before.get(key, 0) for key in keys if after.get(key, 0) != before.get(key, 0)}


def durations_of(requests: Mapping[LabelKey, float]) -> dict[tuple[str, str, str], float]:
    """The histogram counts that requests counted by status imply: the sum over statuses."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for (protocol, method, endpoint, _), value in requests.items():
        counts[(protocol, method, endpoint)] += int(value)
    return {key: float(value) for key, value in counts.items()}


# -- the files of multiprocess mode ----------------------------------------------------------------------------

_FILE = re.compile(r"^(?P<kind>counter|histogram|gauge_\w+?|summary)_(?P<pid>\d+)\.db$")


def files_by_pid(directory: Path) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for name in os.listdir(directory):
        if match := _FILE.match(name):
            found.setdefault(int(match["pid"]), []).append(name)
    return found


def requests_by_pid(directory: Path) -> dict[int, dict[LabelKey, float]]:
    """api_requests_total of each process, read from its own counter file (what the scrape sums)."""
    result: dict[int, dict[LabelKey, float]] = {}
    for pid, names in files_by_pid(directory).items():
        counts: dict[LabelKey, float] = {}
        for name in names:
            if not name.startswith("counter_"):
                continue
            for key, value, _, _ in MmapedDict.read_all_values_from_file(str(directory / name)):
                _, sample, labels, _ = json.loads(key)
                if sample == REQUESTS and value:
                    counts[(labels["protocol"], labels["method"], labels["endpoint"], labels["status"])] = value
        result[pid] = counts
    return result


def active_by_pid(directory: Path) -> dict[int, dict[str, float]]:
    """api_active_requests of each live process, from its `gauge_livesum_<pid>.db` file."""
    result: dict[int, dict[str, float]] = {}
    for pid, names in files_by_pid(directory).items():
        for name in names:
            if name.startswith("gauge_livesum_"):
                try:
                    values = MmapedDict.read_all_values_from_file(str(directory / name))
                except FileNotFoundError:  # the process just died and its file was dropped
                    continue
                for key, value, _, _ in values:
                    _, sample, labels, _ = json.loads(key)
                    if sample == ACTIVE:
                        result.setdefault(pid, {})[labels["protocol"]] = value
    return result


# -- processes -----------------------------------------------------------------------------------------------


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def production_environment(**extra: str) -> dict[str, str]:
    """The environment of a production process on the test database and cache.

    Production settings with fresh keys, no HTTPS redirect (plain HTTP on loopback), no rate limits;
    the database and Redis this test session uses (embedded SQLite file or PostgreSQL + Redis).
    PROMETHEUS_MULTIPROC_DIR only when a caller passes it.
    """
    drop = ("PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE", "GRPC_METRICS_PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("OTEL_")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "metrics-" + secrets.token_hex(32),
            "JWT_SIGNING_KEY": "metrics-jwt-" + secrets.token_hex(32),
            "SECURE_SSL_REDIRECT": "false",
            "RATE_LIMITS_ENABLED": "false",
            "METRICS_ENABLED": "true",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL or "",
            "LOG_LEVEL": "WARNING",  # one access line per call would only fill the log file
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class Process:
    """A server process in its own session; `stop()` ends its whole process group."""

    def __init__(self, command: list[str], env: Mapping[str, str], log: Path) -> None:
        self.command, self.log = command, log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self._terminated = False

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> set[int]:
        """The pids whose parent is this process (gunicorn's workers)."""
        found = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[1]) == self.pid:
                found.add(int(entry))
        return found

    def terminate(self) -> None:
        """SIGTERM to the whole group: gunicorn's master and workers, the gRPC server, Prometheus."""
        if not self._terminated:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, up to `grace` seconds to exit, then SIGKILL to whatever of the group is left."""
        if self.alive():
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # a stuck worker, or a master that did not exit
        self.popen.wait(10)
        self._log_file.close()


def stop_all(processes: Iterable[Process], grace: float = 10.0) -> None:
    """Stop every process, all at once: SIGTERM to each, then each gets what is left of `grace`."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace
    errors = []
    for process in processes:
        try:
            process.stop(grace=max(deadline - time.monotonic(), 0.1))
        except Exception as exc:  # pragma: no cover - stop the others first, then report
            errors.append(exc)
    if errors:
        raise errors[0]
