"""A bounded load of reads and writes through the proxy, and the client's own record of what it saw.

Each worker thread acts as one user (its own API key, so no worker eats another's rate limit) and
works on its own tasks: it creates tasks over REST (every create with an `Idempotency-Key`, retried
with the same key until it is answered), updates them over REST and reads them back over REST and
gRPC. The client records every acknowledged write — the created task's id, and the version each
acknowledged update reached — so that afterwards the database can be checked against it: no
acknowledged write lost, no key creating two tasks, no read older than an acknowledged write.

What counts:
- an *attempt* is one request on the wire;
- a *failed* attempt got no answer (connection refused or reset, timeout) or a 5xx; it is retried
  (writes with the same key) and counted in `retried` when it is tried again;
- a *stale read* answered a task at a version older than the last update the client had been
  acknowledged before it sent the read.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
import requests

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc

TITLE_PREFIX = "load-"
REQUEST_TIMEOUT = 10.0  # seconds: longer than any outage a scenario makes, so a slow answer is not a failure
RETRY_DEADLINE = 60.0  # seconds a write is retried before the client gives up on it (counted as given up)


@dataclass
class Attempt:
    at: float  # monotonic
    kind: str  # "create", "update", "read", "grpc-read"
    outcome: str  # "ok", an HTTP status, a gRPC code name, or "connection"
    retry_after: str | None = None
    worker: int = 0
    detail: str = ""  # why a request got no answer (the exception), or a gRPC call failed (its details)


@dataclass
class Tally:
    """Everything the client saw, shared by the workers (one lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: list[Attempt] = field(default_factory=list)
    retried: int = 0
    given_up: int = 0
    created: dict[str, str] = field(default_factory=dict)  # idempotency key -> task id (acknowledged)
    acked_version: dict[str, int] = field(default_factory=dict)  # task id -> highest acknowledged version
    owner_key: dict[str, str] = field(default_factory=dict)  # task id -> the API key of the worker that made it
    stale_reads: list[tuple[float, str, int, int, str]] = field(default_factory=list)  # at, id, seen, acked, via

    def record(self, attempt: Attempt) -> None:
        with self.lock:
            self.attempts.append(attempt)

    # -- summaries -----------------------------------------------------------------------------------------
    def outcomes(self, since: float = 0.0, until: float = float("inf")) -> Counter[str]:
        with self.lock:
            return Counter(a.outcome for a in self.attempts if since <= a.at < until)

    @property
    def sent(self) -> int:
        return len(self.attempts)

    @property
    def failed(self) -> int:
        return sum(count for outcome, count in self.outcomes().items() if is_failure(outcome))

    def server_errors(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome.isdigit() and int(a.outcome) >= 500]

    def summary(self) -> dict[str, Any]:
        with self.lock:
            start = min((a.at for a in self.attempts), default=0.0)
            failures = [a for a in self.attempts if is_failure(a.outcome)]
        return {
            "sent": self.sent,
            "failed": self.failed,
            # The first ten, each with its second since the load began, so a failure can be placed
            # against the scenario's own timings.
            "failures": [f"{a.at - start:.2f}s {a.kind} {a.outcome} {a.detail}".rstrip() for a in failures[:10]],
            "retried": self.retried,
            "given_up": self.given_up,
            "acknowledged_creates": len(self.created),
            "acknowledged_updates": sum(version - 1 for version in self.acked_version.values()),
            "stale_reads": len(self.stale_reads),
            "outcomes": dict(sorted(self.outcomes().items())),
        }


def _retryable(response: requests.Response) -> bool:
    """5xx, 429, and 409 "idempotency_key_in_flight" (the first attempt may still be running): try again."""
    if response.status_code >= 500 or response.status_code == 429:
        return True
    return response.status_code == 409 and "idempotency_key_in_flight" in response.text


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def is_failure(outcome: str) -> bool:
    return outcome == "connection" or (outcome.isdigit() and int(outcome) >= 500) or outcome in _GRPC_FAILURES


_GRPC_FAILURES = {"UNAVAILABLE", "INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED"}


class Load:
    """`workers` threads, each about `rate` requests a second, until `stop()`."""

    def __init__(
        self,
        http_url: str,
        grpc_target: str,
        api_keys: list[str],
        *,
        rate: float = 6.0,
        write_share: float = 0.5,
        grpc_share: float = 0.25,
    ) -> None:
        self.http_url = http_url.rstrip("/")
        self.grpc_target = grpc_target
        self.api_keys = api_keys
        self.rate = rate
        self.write_share = write_share
        self.grpc_share = grpc_share
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(index, key), daemon=True, name=f"load-{index}")
            for index, key in enumerate(api_keys)
        ]
        self.started = 0.0

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop sending new requests and wait until every write in flight is answered or given up."""
        self._stop.set()
        for thread in self._threads:
            thread.join(RETRY_DEADLINE + REQUEST_TIMEOUT + 5)

    # -- one worker ------------------------------------------------------------------------------------------
    def _work(self, index: int, api_key: str) -> None:
        session = requests.Session()
        session.headers.update({"X-API-Key": api_key, "Accept": "application/json"})
        channel = grpc.insecure_channel(self.grpc_target)
        stub = pb_grpc.TaskServiceStub(channel)
        mine: list[str] = []
        pace = 1.0 / self.rate
        rng = random.Random(index)
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                if not mine or rng.random() < self.write_share:
                    if not mine or rng.random() < 0.5:
                        task_id = self._create(session, index)
                        if task_id:
                            mine.append(task_id)
                    else:
                        self._update(session, index, rng.choice(mine))
                elif rng.random() < self.grpc_share:
                    self._grpc_read(stub, index, rng.choice(mine))
                else:
                    self._read(session, index, rng.choice(mine))
                self._stop.wait(max(0.0, pace - (time.monotonic() - began)))
        finally:
            channel.close()
            session.close()

    def _send(self, session: requests.Session, kind: str, worker: int, method: str, path: str, **kwargs: Any) -> Any:
        """One attempt: the response, or None when it got no answer. Recorded either way."""
        at = time.monotonic()
        try:
            response = session.request(method, f"{self.http_url}{path}", timeout=REQUEST_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            self.tally.record(Attempt(at, kind, "connection", worker=worker, detail=_detail(exc)))
            return None
        self.tally.record(Attempt(at, kind, str(response.status_code), response.headers.get("Retry-After"), worker))
        return response

    def _retrying(self, attempt: Any) -> Any:
        """Run `attempt()` until it returns a definitive answer (not None, not 5xx) or the deadline passes."""
        deadline = time.monotonic() + RETRY_DEADLINE
        delay = 0.05
        while True:
            response = attempt()
            if response is not None and not _retryable(response):
                return response
            if time.monotonic() >= deadline:
                with self.tally.lock:
                    self.tally.given_up += 1
                return None
            wait = delay
            if response is not None and response.headers.get("Retry-After", "").isdigit():
                wait = min(float(response.headers["Retry-After"]), 2.0)
            time.sleep(wait)
            delay = min(delay * 2, 1.0)
            with self.tally.lock:
                self.tally.retried += 1

    def _create(self, session: requests.Session, worker: int) -> str | None:
        key = uuid.uuid4().hex
        body = {"title": f"{TITLE_PREFIX}{key}", "priority": "medium", "tags": ["load"]}
        response = self._retrying(
            lambda: self._send(
                session, "create", worker, "POST", "/api/v1/tasks", json=body, headers={"Idempotency-Key": key}
            )
        )
        if response is None or response.status_code != 201:
            return None
        task = response.json()
        with self.tally.lock:
            self.tally.created[key] = task["id"]
            self.tally.acked_version[task["id"]] = task["version"]
            self.tally.owner_key[task["id"]] = self.api_keys[worker]
        return str(task["id"])

    def _update(self, session: requests.Session, worker: int, task_id: str) -> None:
        # No If-Match: a retry after a lost answer applies the same change again (a new version), which is
        # harmless here and keeps every acknowledged version a lower bound of the database's.
        body = {"description": uuid.uuid4().hex}
        response = self._retrying(
            lambda: self._send(session, "update", worker, "PATCH", f"/api/v1/tasks/{task_id}", json=body)
        )
        if response is None or response.status_code != 200:
            return
        version = response.json()["version"]
        with self.tally.lock:
            if version > self.tally.acked_version.get(task_id, 0):
                self.tally.acked_version[task_id] = version

    def _read(self, session: requests.Session, worker: int, task_id: str) -> None:
        with self.tally.lock:
            acked = self.tally.acked_version.get(task_id, 0)
        response = self._send(session, "read", worker, "GET", f"/api/v1/tasks/{task_id}")
        if response is not None and response.status_code == 200:
            self._check_fresh(task_id, response.json()["version"], acked, "rest")

    def _grpc_read(self, stub: Any, worker: int, task_id: str) -> None:
        with self.tally.lock:
            acked = self.tally.acked_version.get(task_id, 0)
        at = time.monotonic()
        key = self.api_keys[worker]
        try:
            task = stub.GetTask(
                pb.GetTaskRequest(id=task_id), metadata=[("x-api-key", key)], timeout=REQUEST_TIMEOUT
            ).task
        except grpc.RpcError as error:
            self.tally.record(Attempt(at, "grpc-read", error.code().name, worker=worker, detail=error.details() or ""))
            return
        self.tally.record(Attempt(at, "grpc-read", "ok", worker=worker))
        self._check_fresh(task_id, task.version, acked, "grpc")

    def _check_fresh(self, task_id: str, seen: int, acked: int, via: str) -> None:
        if seen < acked:
            with self.tally.lock:
                self.tally.stale_reads.append((time.monotonic(), task_id, seen, acked, via))
