"""Live-events benchmark: 1,000 Server-Sent Events subscribers on one ASGI server process, commit to delivery.

    .venv/bin/python bench/events.py [--servers uvicorn,granian] [--subscribers 1000] [--users 100] [--rate 100]

For each ASGI server (uvicorn with uvloop and httptools; granian's ASGI interface), one worker process pinned
to the server CPU with production settings, PostgreSQL and Redis: open `--subscribers` streams of
`GET /api/v1/tasks/events` from a raw asyncio HTTP/1.1 client on the load CPU (`--users` users, each with
its own access token, the same number of streams each), measure the server's memory before and after, leave
them idle, then let a writer process (also on the load CPU) create and update tasks through
`tasks.services` at `--rate` writes/s, round-robin over the users, and time every event from the moment
the write returned (the commit is behind it) to the moment its bytes reached each subscriber. Then the next
server, in the same run. See bench/README.md ("Live events").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if sys.path and Path(sys.path[0]).resolve() == BENCH_DIR:  # `python bench/events.py`: Django needs the root
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402 - needs the project root on sys.path
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    RESULTS_DIR,
    BenchError,
    PostgresSessions,
    Server,
    _venv_program,
    check_redis,
    ensure_database,
    free_port,
    log,
    server_environment,
)

USERNAME_PREFIX = "events-bench-"
EVENTS_PATH = "/api/v1/tasks/events"
LATENCY_TARGET_MS = 100.0  # issue 13: p99 commit to delivery at 100 writes/s with 1,000 subscribers
WARMUP_STREAMS = 20  # opened and closed before the "before" memory reading, so first-use costs are not counted
SERVERS = ("uvicorn", "granian")


# -- options ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated, run in this order")
    parser.add_argument("--subscribers", type=int, default=1000, help="open streams on the server (default 1000)")
    parser.add_argument("--users", type=int, default=100, help="users the streams are spread over (default 100)")
    parser.add_argument("--rate", type=float, default=100.0, help="writes per second (default 100)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of writes measured (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of writes before the measurement (default 3)")
    parser.add_argument("--writer-threads", type=int, default=10, help="threads sharing the writes (default 10)")
    parser.add_argument("--idle", type=int, default=15, help="seconds the open streams stay idle (default 15)")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="streams being opened at once")
    parser.add_argument("--rounds", type=int, default=1, help="measure every server this many times (default 1)")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the server, the writer and the subscribers at this niceness (negative: ahead of other jobs; root)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--server-cpu", default="0", help="CPU list for the server (taskset -c; default 0)")
    parser.add_argument("--load-cpu", default="1", help="CPU list for the subscribers and the writer (default 1)")
    parser.add_argument("--writer-cpu", default="", help="CPU list for the writer alone (default: --load-cpu)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    # The writer process runs this file again with --writer; not for direct use.
    parser.add_argument("--writer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    if unknown := set(args.servers) - set(SERVERS):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))} (known: {', '.join(SERVERS)})")
    if args.subscribers < 1 or args.users < 1 or args.rate <= 0 or args.duration < 1 or args.rounds < 1:
        parser.error("--subscribers, --users, --rate, --duration and --rounds must be positive")
    if args.warmup < 0 or args.idle < 0:
        parser.error("--warmup and --idle must not be negative")
    if args.writer_threads < 1 or args.users % args.writer_threads:
        parser.error("--users must be a multiple of --writer-threads (each user's writes stay in one thread)")
    if args.subscribers % args.users:
        parser.error("--subscribers must be a multiple of --users (the same number of streams per user)")
    return args


# -- data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    user_id: int
    token: str


def setup_django(env: dict[str, str]) -> None:
    """Django in this process with the server's environment (same database, Redis and signing key)."""
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()


def prepare_accounts(users: int) -> list[Account]:
    """Migrate, (re)create the bench users without tasks, and mint each an access token."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    from api_rest.auth import TokenObtainSerializer
    from tasks.models import Task

    log("migrating")
    call_command("migrate", interactive=False, verbosity=0)
    user_model = get_user_model()
    accounts = []
    for n in range(users):
        user, created = user_model.objects.get_or_create(username=f"{USERNAME_PREFIX}{n:03d}")
        if created:  # the post_save signal has made it an editor, like every new user
            user.set_unusable_password()
            user.save(update_fields=["password"])
        accounts.append(Account(user_id=user.pk, token=str(TokenObtainSerializer.get_token(user).access_token)))
    Task.objects.filter(owner__username__startswith=USERNAME_PREFIX).delete()  # earlier runs' writes
    connections.close_all()
    return accounts


def database_backends(database_url: str) -> int | None:
    """Connections open to the bench database now (None when it is not PostgreSQL)."""
    parts = urlsplit(database_url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        return None
    import psycopg

    maintenance = parts._replace(scheme="postgresql", path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [parts.path.lstrip("/")]
        ).fetchone()
    return int(row[0]) if row else None


def nice(niceness: int) -> list[str]:
    """The command prefix that runs a program at `niceness` (none for 0)."""
    return ["nice", "-n", str(niceness)] if niceness else []


# -- the writer process -------------------------------------------------------------------------------


def run_writer(out_path: Path) -> None:
    """The writer process: after "go" on stdin, `rate` writes/s through tasks.services for `seconds`,
    round-robin over the given users; each user's even writes create a task, its odd ones retitle the
    task it created last. One JSON line per write: when the call started and returned, task and version.

    Write n is due at n / rate s after "go". `threads` threads share the writes, each user's in one
    thread (in order): a commit waits for PostgreSQL's WAL flush, which one thread alone cannot do 100
    times a second on a busy disk. Reads "rate seconds threads user-id,user-id,…" from the first line of
    stdin, then waits for "go".
    """
    from django.contrib.auth import get_user_model
    from django.db import connection

    from core.auth import actor_from_user
    from tasks.services import task_create, task_update

    rate_text, seconds_text, threads_text, ids = sys.stdin.readline().split()
    rate, total, threads = float(rate_text), int(float(rate_text) * float(seconds_text)), int(threads_text)
    users = get_user_model().objects.in_bulk([int(user_id) for user_id in ids.split(",")])
    actors = [actor_from_user(users[int(user_id)]) for user_id in ids.split(",")]
    connection.close()  # each thread opens its own
    records: list[dict[str, Any]] = []
    failures: list[BaseException] = []

    def write(first: int) -> None:
        last_task: dict[int, Any] = {}
        try:
            for n in range(first, total, threads):
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                actor = actors[n % len(actors)]
                previous = last_task.get(actor.id)
                began = time.time()
                if previous is None or (n // len(actors)) % 2 == 0:
                    task = task_create(actor=actor, data={"title": f"Event bench write {n}", "tags": ["bench"]})
                else:
                    task = task_update(actor=actor, task_id=previous, changes={"title": f"Event bench write {n}"})
                returned = time.time()
                last_task[actor.id] = task.pk
                records.append(
                    {"n": n, "task": str(task.pk), "version": task.version, "began": began, "returned": returned}
                )
        except BaseException as error:
            failures.append(error)
            raise
        finally:
            connection.close()

    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    start = time.monotonic()
    workers = [threading.Thread(target=write, args=(first,)) for first in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise SystemExit(f"the writer failed: {failures[0]!r}")
    records.sort(key=lambda record: record["n"])
    out_path.write_text("\n".join(json.dumps(record) for record in records) + "\n")


class Writer:
    """The writer process (this file with --writer), pinned to the load CPU, started ahead of time so
    Django's start-up is not inside the measurement."""

    def __init__(self, env: dict[str, str], cpu: str, niceness: int, out_path: Path, log_path: Path) -> None:
        self.out_path = out_path
        command = [
            *nice(niceness),
            *["taskset", "-c", cpu, sys.executable, str(Path(__file__).resolve()), "--writer", str(out_path)],
        ]
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file
            )

    def start(self, rate: float, seconds: float, threads: int, accounts: list[Account]) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        ids = ",".join(str(account.user_id) for account in accounts)
        self.process.stdin.write(f"{rate} {seconds} {threads} {ids}\n".encode())
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != b"ready":
            raise BenchError(f"the writer did not start; see {self.process.args}")
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def records(self, timeout: float) -> list[dict[str, Any]]:
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise BenchError("the writer did not finish in time") from None
        if status != 0:
            raise BenchError(f"the writer exited with status {status}")
        return [json.loads(line) for line in self.out_path.read_text().splitlines() if line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


# -- the ASGI servers -----------------------------------------------------------------------------------


class StreamServer(Server):
    """One ASGI worker process serving config.asgi (bench.settings), pinned to the server CPU.

    uvicorn runs in a single process (no supervisor with one worker); granian runs a main process and one
    worker. Memory and CPU are those of all the server's processes.
    """

    def __init__(self, kind: str, env: dict[str, str], port: int, cpu: str, niceness: int, log_path: Path) -> None:
        super().__init__(kind, env, port, cpu, log_path)
        if kind == "uvicorn":
            program = [
                _venv_program("uvicorn"),
                "config.asgi:application",
                "--host", "127.0.0.1",
                "--port", str(port),
                "--loop", "uvloop",
                "--http", "httptools",
                "--lifespan", "off",  # Django's ASGI handler has no lifespan protocol
                "--no-access-log",
                "--log-level", "warning",
            ]  # fmt: skip
        else:
            program = [
                _venv_program("granian"),
                "--interface", "asginl",  # ASGI without the lifespan protocol, which Django does not speak
                "--workers", "1",
                "--loop", "uvloop",
                "--host", "127.0.0.1",
                "--port", str(port),
                "--log-level", "warning",
                "config.asgi:application",
            ]  # fmt: skip
        self.command = [*nice(niceness), "taskset", "-c", cpu, *program]

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        return [self.process.pid, *super().worker_pids()]

    def runqueue_wait_seconds(self) -> float:
        """Time the server's threads have spent ready to run but waiting for a CPU (schedstat): what
        other jobs on the server's CPU cost it. Threads that have ended are not counted."""
        total = 0
        for pid in self.worker_pids():
            for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    total += int(stat.read_text().split()[1])
        return total / 1e9

    def rss_bytes(self) -> int:
        """Resident memory of the server's processes (VmRSS)."""
        total = 0
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total


# -- the subscribers --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Delivery:
    subscriber: int
    type: str
    task_id: str
    version: int
    occurred_at: str  # when the write's transaction committed (the core stamps it in on_commit)
    appended: float  # when Redis appended it: the milliseconds of its id (the log's clock, this machine's)
    received: float  # time.time() when the bytes that completed the event arrived


@dataclass(slots=True)
class Subscribers:
    """What every stream of the run received; shared by the protocol instances."""

    deliveries: list[Delivery] = field(default_factory=list)
    heartbeats: int = 0
    gaps: int = 0
    ended: dict[str, int] = field(default_factory=dict)  # reason → streams the server ended
    recording: bool = False

    def end(self, reason: str) -> None:
        self.ended[reason] = self.ended.get(reason, 0) + 1


class EventStream(asyncio.Protocol):
    """One SSE stream over a raw HTTP/1.1 connection: the request, the response head, the body
    de-chunked (Transfer-Encoding: chunked) when it is, and split into events."""

    def __init__(self, index: int, request: bytes, shared: Subscribers) -> None:
        self.index = index
        self.request = request
        self.shared = shared
        self.transport: asyncio.BaseTransport | None = None
        self.head: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.buffer = b""  # raw bytes not yet parsed (head, chunk framing)
        self.events = b""  # de-chunked body not yet split into events
        self.chunked = False
        self.chunk_left = 0  # body bytes left in the current chunk; -2 while its CRLF is pending
        self.closing = False
        self.error = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        cast(asyncio.WriteTransport, transport).write(self.request)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        received = time.time()
        if not self.head.done():
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
            status = int(head.split(" ", 2)[1])
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
            }
            self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            self.head.set_result(status)
            if status != 200:
                self.error = self.buffer
                return
            data, self.buffer = self.buffer, b""
        elif self.error:
            self.error += data
            return
        self.feed(self.dechunk(data) if self.chunked else data, received)

    def dechunk(self, data: bytes) -> bytes:
        self.buffer += data
        body = b""
        while self.buffer:
            if self.chunk_left > 0:
                piece = self.buffer[: self.chunk_left]
                body += piece
                self.buffer = self.buffer[len(piece) :]
                self.chunk_left -= len(piece)
                if self.chunk_left == 0:
                    self.chunk_left = -2
            elif self.chunk_left == -2:
                if len(self.buffer) < 2:
                    break
                self.buffer, self.chunk_left = self.buffer[2:], 0
            else:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    break
                size = int(self.buffer[:end].split(b";")[0], 16)
                self.buffer = self.buffer[end + 2 :]
                if size == 0:
                    break  # the last chunk: the server ended the stream (connection_lost follows)
                self.chunk_left = size
        return body

    def feed(self, body: bytes, received: float) -> None:
        self.events = (self.events + body).replace(b"\r\n", b"\n")
        *complete, self.events = self.events.split(b"\n\n")
        for raw in complete:
            self.dispatch(raw.decode(), received)

    def dispatch(self, raw: str, received: float) -> None:
        """One SSE message (docs/api/rest.md, "Live events"): `event:` is the type, `data:` one line of
        JSON; `event: end` ends the stream with a `code`; `retry:` and `: keep-alive` carry no data."""
        name, data = "", ""
        for line in raw.split("\n"):
            if line.startswith(":"):
                self.shared.heartbeats += 1
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
        if not data:
            return
        payload = json.loads(data)
        if name == "end":
            self.shared.end(payload["code"])
        elif name == "gap":
            self.shared.gaps += 1
        elif self.shared.recording:
            self.shared.deliveries.append(
                Delivery(
                    subscriber=self.index,
                    type=name,
                    task_id=payload["task_id"],
                    version=payload["version"],
                    occurred_at=payload["occurred_at"],
                    appended=int(payload["id"].split("-")[0]) / 1000,
                    received=received,
                )
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectionError(f"closed before the response head: {exc}"))
        elif not self.closing:
            self.shared.end(f"connection closed by the server ({exc or 'EOF'})")

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


async def open_streams(
    base_port: int, accounts: list[Account], count: int, concurrency: int, shared: Subscribers, first_index: int = 0
) -> list[EventStream]:
    """Open `count` streams, spread evenly over `accounts`, at most `concurrency` at a time; raise if
    any is refused (status and body in the message)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    streams: list[EventStream] = []

    async def one(index: int) -> None:
        account = accounts[index % len(accounts)]
        request = (
            f"GET {EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{base_port}\r\n"
            f"Authorization: Bearer {account.token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        async with gate:
            _, stream = await loop.create_connection(
                lambda: EventStream(index, request, shared), "127.0.0.1", base_port
            )
            streams.append(stream)
            try:
                status = await asyncio.wait_for(stream.head, timeout=30)
            except (TimeoutError, ConnectionError) as error:
                raise BenchError(f"stream {index}: no response head from {EVENTS_PATH}: {error!r}") from None
            if status != 200:
                await asyncio.sleep(0.2)  # the rest of the problem body
                raise BenchError(f"stream {index}: {EVENTS_PATH} answered {status}: {stream.error[:300]!r}")

    try:
        await asyncio.gather(*(one(first_index + n) for n in range(count)))
    except BaseException:
        for stream in streams:
            stream.close()
        raise
    return streams


# -- one server ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Measurement:
    server: str
    streams: int = 0
    open_seconds: float = 0.0
    rss_before: int = 0
    rss_idle: int = 0
    rss_after_writes: int = 0
    pg_sessions_opened: int | None = None  # new PostgreSQL sessions while the streams were opened
    pg_backends_idle: int | None = None  # connections to the database while they were idle (the writer's not yet)
    idle_seconds: float = 0.0
    idle_cpu_seconds: float = 0.0
    writes: int = 0
    write_span: float = 0.0  # from the first measured write's call to the last one's return
    write_call_ms_p50: float = 0.0
    window_seconds: float = 0.0  # the measured window: server CPU, and the events received in it
    window_events: int = 0
    client_lag_ms: float = 0.0  # the subscribers' event loop: how late its 50 ms ticks ran, at most
    load: tuple[float, float] = (0.0, 0.0)  # the 1-minute load average as the writes start and end
    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    heartbeats: int = 0
    gaps: int = 0
    # Per delivery, from the commit: the event's occurred_at, stamped by the core in on_commit right after
    # the transaction committed (in the writer process: the same clock as the subscribers').
    latency_ms: list[float] = field(default_factory=list)
    # Per delivery, from the moment the writer's call returned (after on_commit's cache write and XADD).
    returned_ms: list[float] = field(default_factory=list)
    # Per delivery, from the moment the log appended the event (its id): the server's share of the latency.
    appended_ms: list[float] = field(default_factory=list)
    busy_cpu_seconds: float = 0.0
    busy_wait_seconds: float = 0.0  # the server's threads waiting for a CPU while the writes are measured
    open_cpu_seconds: float = 0.0  # the server's CPU while the streams were opened
    ended: dict[str, int] = field(default_factory=dict)
    failure: str = ""

    @property
    def kib_per_stream(self) -> float:
        return (self.rss_idle - self.rss_before) / 1024 / self.streams if self.streams else 0.0


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (0 < share <= 1) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else float("nan")


def match(
    result: Measurement, records: list[dict[str, Any]], shared: Subscribers, per_user: int, first: int, out: Path
) -> None:
    """Pair every delivery with the write that caused it (task id and version); count what is missing.

    Each measured write (number >= `first`) is owed to the `per_user` streams of its owner. Writes every
    delivery to `out` (CSV: when it was received, which stream, the three latencies in ms).
    """
    measured = {(record["task"], record["version"]): record for record in records if record["n"] >= first}
    result.expected = len(measured) * per_user
    seen: set[tuple[int, str, int]] = set()
    rows = ["received,stream,from_commit_ms,from_return_ms,from_append_ms"]
    for delivery in shared.deliveries:
        record = measured.get((delivery.task_id, delivery.version))
        if record is None:
            continue  # an event of the warm-up writes
        key = (delivery.subscriber, delivery.task_id, delivery.version)
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        committed = datetime.fromisoformat(delivery.occurred_at).timestamp()
        result.latency_ms.append((delivery.received - committed) * 1000)
        result.returned_ms.append((delivery.received - record["returned"]) * 1000)
        result.appended_ms.append((delivery.received - delivery.appended) * 1000)
        rows.append(
            f"{delivery.received:.6f},{delivery.subscriber},{result.latency_ms[-1]:.3f},"
            f"{result.returned_ms[-1]:.3f},{result.appended_ms[-1]:.3f}"
        )
    result.delivered = len(seen)
    out.write_text("\n".join(rows) + "\n")


async def tick(result: Measurement) -> None:
    """Record how late this process's event loop runs a 50 ms sleep: a receive time is only as good
    as the loop that takes it (the writer shares its CPU)."""
    while True:
        began = time.monotonic()
        await asyncio.sleep(0.05)
        result.client_lag_ms = max(result.client_lag_ms, (time.monotonic() - began - 0.05) * 1000)


async def measure_server(
    args: argparse.Namespace, kind: str, env: dict[str, str], accounts: list[Account], out_dir: Path, name: str
) -> Measurement:
    """Start `kind`, open the streams, idle, write, match; always stop the server and the writer.
    `name` labels the row and the files of this measurement."""
    result = Measurement(server=name)
    server = StreamServer(kind, env, free_port(), args.server_cpu, args.nice, out_dir / f"server-{name}.log")
    writer = Writer(
        env,
        args.writer_cpu or args.load_cpu,
        args.nice,
        out_dir / f"writes-{name}.jsonl",
        out_dir / f"writer-{name}.log",
    )
    shared = Subscribers()
    pg_sessions = PostgresSessions(args.database_url)
    streams: list[EventStream] = []
    per_user = args.subscribers // args.users
    try:
        server.start()
        log(f"[{kind}] warm-up: {WARMUP_STREAMS} streams opened and closed")
        warmup = await open_streams(server.port, accounts, WARMUP_STREAMS, args.connect_concurrency, shared)
        await asyncio.sleep(1)
        for stream in warmup:
            stream.close()
        await asyncio.sleep(3)  # the server notices the disconnects and frees the slots
        result.rss_before = server.rss_bytes()

        log(f"[{kind}] opening {args.subscribers} streams ({per_user} for each of {args.users} users)")
        sessions = await asyncio.to_thread(pg_sessions.count)
        cpu, began = server.cpu_seconds(), time.monotonic()
        streams = await open_streams(server.port, accounts, args.subscribers, args.connect_concurrency, shared)
        result.open_seconds = time.monotonic() - began
        result.open_cpu_seconds = server.cpu_seconds() - cpu
        result.streams = len(streams)
        await asyncio.sleep(3)
        result.rss_idle = server.rss_bytes()
        after = await asyncio.to_thread(pg_sessions.count)
        if sessions is not None and after is not None:
            result.pg_sessions_opened = after - sessions
        result.pg_backends_idle = await asyncio.to_thread(database_backends, args.database_url)
        log(f"[{kind}] {result.streams} streams open in {result.open_seconds:.1f} s; idle for {args.idle} s")
        cpu = server.cpu_seconds()
        began = time.monotonic()
        await asyncio.sleep(args.idle)
        result.idle_seconds = time.monotonic() - began
        result.idle_cpu_seconds = server.cpu_seconds() - cpu

        log(f"[{kind}] writing {args.rate:g}/s: {args.warmup} s warm-up, {args.duration} s measured")
        shared.recording = True
        ticker = asyncio.create_task(tick(result))
        await asyncio.to_thread(writer.start, args.rate, args.warmup + args.duration, args.writer_threads, accounts)
        await asyncio.sleep(args.warmup)
        load_before = os.getloadavg()[0]
        cpu, began, window_start = server.cpu_seconds(), time.monotonic(), time.time()
        waited = server.runqueue_wait_seconds()
        await asyncio.sleep(args.duration)
        result.busy_cpu_seconds = server.cpu_seconds() - cpu
        result.busy_wait_seconds = server.runqueue_wait_seconds() - waited
        result.window_seconds, window_end = time.monotonic() - began, time.time()
        result.load = (load_before, os.getloadavg()[0])
        result.window_events = sum(window_start <= d.received < window_end for d in shared.deliveries)
        records = await asyncio.to_thread(writer.records, 60)
        await asyncio.sleep(2)  # deliveries still in flight
        shared.recording = False
        ticker.cancel()
        result.rss_after_writes = server.rss_bytes()

        first = int(args.rate * args.warmup)
        measured = [record for record in records if record["n"] >= first]
        result.writes = len(measured)
        result.write_span = measured[-1]["returned"] - measured[0]["began"] if measured else 0.0
        result.write_call_ms_p50 = statistics.median((r["returned"] - r["began"]) * 1000 for r in measured)
        match(result, records, shared, per_user, first, out_dir / f"deliveries-{name}.csv")
        result.heartbeats, result.gaps = shared.heartbeats, shared.gaps
        result.ended = dict(shared.ended)
        problems = []
        if result.delivered < result.expected:
            problems.append(f"{result.expected - result.delivered} of {result.expected} deliveries missing")
        if result.ended:
            problems.append(f"{sum(result.ended.values())} streams ended by the server")
        result.failure = "; ".join(problems)
    except BenchError as error:
        result.failure = str(error)
    finally:
        for stream in streams:
            stream.close()
        await asyncio.sleep(1)  # the loop runs the closes, so the server sees its streams end before its SIGTERM
        writer.stop()
        server.stop()
    return result


# -- report ------------------------------------------------------------------------------------------------


def _cells(r: Measurement) -> list[str]:
    """One row of the table; "-" for what this server did not get to measure."""

    def ms(values: list[float], share: float) -> str:
        return f"{percentile(values, share):.1f}" if values else "-"

    return [
        r.server,
        f"{r.streams:,}",
        f"{r.open_seconds:.1f}" if r.streams else "-",
        f"{1000 * r.open_cpu_seconds / r.streams:.1f}" if r.streams else "-",
        f"{r.kib_per_stream:.1f}" if r.streams and r.rss_idle else "-",
        f"{100 * r.idle_cpu_seconds / r.idle_seconds:.1f}" if r.idle_seconds else "-",
        f"{r.writes / r.write_span:.0f}" if r.write_span else "-",
        f"{r.window_events / r.window_seconds:,.0f}" if r.window_seconds else "-",
        ms(r.latency_ms, 0.5),
        ms(r.latency_ms, 0.99),
        f"{max(r.latency_ms):.1f}" if r.latency_ms else "-",
        f"{ms(r.returned_ms, 0.5)} / {ms(r.returned_ms, 0.99)}",
        f"{ms(r.appended_ms, 0.5)} / {ms(r.appended_ms, 0.99)}",
        f"{100 * r.busy_cpu_seconds / r.window_seconds:.0f}" if r.window_seconds else "-",
        f"{1000 * 1000 * r.busy_cpu_seconds / r.window_events:.1f}" if r.window_events else "-",
        f"{100 * r.busy_wait_seconds / r.window_seconds:.0f}" if r.window_seconds else "-",
    ]


HEADER = [
    "server",
    "streams",
    "opened in s",
    "CPU ms / stream opened",
    "KiB / idle stream",
    "idle CPU %",
    "writes/s",
    "events/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "p50 / p99 ms from the write's return",
    "p50 / p99 ms from the append",
    "CPU % writing",
    "CPU ms / 1k events",
    "waiting for a CPU %",
]


def render(results: list[Measurement], markdown: bool) -> str:
    """The table, then one line per server with the target, the counts, memory and PostgreSQL."""
    lines = [_cells(r) for r in results]
    if markdown:
        out = ["| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 1)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
    else:
        widths = [max(len(cells[i]) for cells in [HEADER, *lines]) for i in range(len(HEADER))]
        out = [
            "  ".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            )
            for cells in [HEADER, ["-" * w for w in widths], *lines]
        ]
    out.append("")
    for r in results:
        facts = []
        if r.latency_ms:
            p99 = percentile(r.latency_ms, 0.99)
            verdict = "meets" if p99 <= LATENCY_TARGET_MS else "misses"
            facts.append(f"p99 {p99:.1f} ms ({verdict} the target of <= {LATENCY_TARGET_MS:.0f} ms)")
        if r.expected:
            facts.append(f"load {r.load[0]:.1f} as the writes started, {r.load[1]:.1f} as they ended")
            facts.append(f"the subscribers' loop ran up to {r.client_lag_ms:.0f} ms late")
            facts.append(
                f"{r.delivered:,} of {r.expected:,} deliveries, {r.duplicates} duplicates, {r.gaps} gaps, "
                f"{r.heartbeats} heartbeats; a write call took {r.write_call_ms_p50:.1f} ms (p50)"
            )
        if r.rss_idle:
            facts.append(
                f"RSS {r.rss_before / 2**20:.0f} MiB before the streams, {r.rss_idle / 2**20:.0f} MiB with them idle"
                + (f", {r.rss_after_writes / 2**20:.0f} MiB after the writes" if r.rss_after_writes else "")
            )
        if r.pg_backends_idle is not None:
            facts.append(
                f"PostgreSQL: {r.pg_sessions_opened} sessions opened with the streams, "
                f"{r.pg_backends_idle} connections open while they were idle"
            )
        if r.ended:
            facts.append("streams the server ended: " + ", ".join(f"{k} {v}" for k, v in r.ended.items()))
        if r.failure:
            facts.append(f"FAILED: {r.failure}")
        out.append(f"{r.server}: " + "; ".join(facts))
    return "\n".join(out)


def describe_run(args: argparse.Namespace) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"taskhub live-events bench {datetime.now(UTC):%Y-%m-%d %H:%M UTC}{f' @ {commit}' if commit else ''}; "
        f"{os.cpu_count()} CPUs, load {load}; one ASGI worker on CPU {args.server_cpu}; "
        f"{args.subscribers} SSE streams ({args.users} users x {args.subscribers // args.users}) and the writer "
        f"({args.rate:g} writes/s through tasks.services, {args.duration} s measured after {args.warmup} s) "
        f"on CPU {args.load_cpu}" + (f"; all at niceness {args.nice}" if args.nice else "")
    )


# -- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.writer is not None:  # the environment is the server's, passed by the parent
        import django

        django.setup()
        run_writer(args.writer)
        return 0
    env = server_environment(args)
    ensure_database(args.database_url)
    check_redis(args.redis_url)
    setup_django(env)
    from django.conf import settings

    accounts = prepare_accounts(args.users)
    # The limits must let this run through (the defaults do for 1,000 streams of 10 per user).
    env["EVENTS_MAX_STREAMS"] = str(max(settings.EVENTS_MAX_STREAMS, args.subscribers))
    env["EVENTS_MAX_STREAMS_PER_USER"] = str(max(settings.EVENTS_MAX_STREAMS_PER_USER, args.subscribers // args.users))
    out_dir = RESULTS_DIR / ("events-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    out_dir.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {int(cpu) for cpu in args.load_cpu.split(",")})
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    # The subscribers must not add pauses of their own to the latencies: a full collection of this
    # process's heap (Django, 1,000 protocols, the deliveries) took 100-180 ms here. It makes few cycles.
    gc.collect()
    gc.disable()
    description = describe_run(args)

    async def run_all() -> list[Measurement]:
        """Every server once per round, the order reversed every other round, so the machine's drift
        (other jobs come and go) does not always favour the same server."""
        results = []
        for number in range(args.rounds):
            for kind in args.servers if number % 2 == 0 else args.servers[::-1]:
                name = f"{kind}-{number + 1}" if args.rounds > 1 else kind
                results.append(await measure_server(args, kind, env, accounts, out_dir, name))
        return results

    try:
        import uvloop

        results = uvloop.run(run_all())
    except ImportError:
        results = asyncio.run(run_all())
    report = f"{description}\n\n{render(results, args.markdown)}\n"
    (out_dir / ("summary.md" if args.markdown else "summary.txt")).write_text(report)
    print(report)
    log(f"server logs, the writers' records and every delivery: {out_dir.relative_to(ROOT)}/")
    return 1 if any(r.failure for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
