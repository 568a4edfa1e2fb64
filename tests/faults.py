"""Real database faults for tests of every protocol: an unreachable database, held locks, ended sessions.

No mocks: the connection settings are broken for real, locks are taken by another connection.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from tests.live import executable, free_port


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def terminate_other_connections() -> int:
    """PostgreSQL: end every other client session on the test database (the server threads' ones).

    Server threads keep their connections (CONN_MAX_AGE) after the server stops; ending them lets
    the test database be flushed and dropped, and lets a test cut a connection for real.
    """
    if connection.vendor != "postgresql":
        return 0
    ended = 0

    def none_left() -> bool:
        nonlocal ended
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            (count,) = cursor.fetchone()
        ended += count
        # A server thread still at work may reconnect (its service retries): then end that session too.
        return wait_until(lambda: _other_sessions() == 0, timeout=0.5, interval=0.005)

    wait_until(none_left, timeout=10, interval=0)
    return ended


def _other_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        (count,) = cursor.fetchone()
    return int(count)


@contextmanager
def database_unreachable() -> Iterator[None]:
    """Make every connection of the default database fail for real, in every thread, then put it back.

    The settings dict is shared by the connections of all threads, so new connections of the server's
    threads fail too; their open ones are ended (PostgreSQL; SQLite closes them after each call).
    """
    terminate_other_connections()
    if connection.vendor == "sqlite":
        broken = {"NAME": "/nonexistent-directory/taskhub/db.sqlite3"}
    else:
        broken = {"HOST": "127.0.0.1", "PORT": "1"}  # nothing listens on port 1
    with default_database_settings(**broken):
        yield


@contextmanager
def default_database_settings(**changes: Any) -> Iterator[None]:
    """Change the default database's connection settings for the block, in every thread (the settings
    dict is shared by the connections of all threads), then put them back."""
    settings_dict = connections["default"].settings_dict
    saved = dict(settings_dict)
    connection.close()
    settings_dict.update(changes)
    try:
        yield
    finally:
        connection.close()
        settings_dict.clear()
        settings_dict.update(saved)


@contextmanager
def _held(take_lock: Callable[[], None]) -> Iterator[None]:
    """Run `take_lock` in a transaction of another thread and connection; hold it until the block ends."""
    locked, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        from django.db import connection as thread_connection
        from django.db import transaction

        try:
            with transaction.atomic():
                take_lock()
                locked.set()
                release.wait(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            locked.set()
            thread_connection.close()

    holder = threading.Thread(target=hold, name="lock-holder")
    holder.start()
    try:
        assert locked.wait(10) and not errors, errors
        yield
    finally:
        release.set()
        holder.join(10)
    assert not errors, errors


def row_locked(task_id: Any) -> Any:
    """Hold a write lock on a task from another connection until the block ends.

    PostgreSQL: SELECT ... FOR UPDATE of the row. SQLite: the IMMEDIATE transaction of
    `transaction.atomic` holds the database's write lock, so every write of the server waits.
    """
    from tasks.models import Task

    return _held(lambda: Task.objects.select_for_update().filter(pk=task_id).exists() or None)


def task_writes_blocked() -> Any:
    """Make every write to the task table wait (reads go on) until the block ends.

    PostgreSQL: LOCK TABLE ... IN SHARE MODE, which each INSERT, UPDATE and DELETE statement waits
    for. SQLite: the write lock held by the IMMEDIATE transaction.
    """

    def take_lock() -> None:
        from django.db import connection as thread_connection

        if thread_connection.vendor == "postgresql":
            with thread_connection.cursor() as cursor:
                cursor.execute("LOCK TABLE tasks_task IN SHARE MODE")

    return _held(take_lock)


def a_call_waits_on_a_lock(timeout: float = 5.0) -> bool:
    """True once another session waits on a lock (PostgreSQL); SQLite cannot tell, so after a pause."""
    if connection.vendor != "postgresql":
        time.sleep(0.4)
        return True

    def waiting() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )
            (count,) = cursor.fetchone()
        return bool(count)

    return wait_until(waiting, timeout=timeout)


@contextmanager
def statement_timeout(*, milliseconds: int) -> Iterator[None]:
    """PostgreSQL: cut this connection's statements short after `milliseconds` until the block ends."""
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = %s", [milliseconds])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")


# -- a network that loses packets ---------------------------------------------------------------------


def iptables(*arguments: str) -> str:
    command = executable("IPTABLES", "iptables")
    if command is None:
        pytest.fail("this test needs iptables (`make iptables` installs Debian's, as root), or IPTABLES=/path/to/it")
    # -w: wait for the xtables lock another iptables holds, rather than fail at once.
    result = subprocess.run([command, "-w", *arguments], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.fail(f"iptables {' '.join(arguments)}: {result.stderr.strip()}")
    return result.stdout


@contextmanager
def packets_lost(port: int, tag: str, *, probability: float | None = None) -> Iterator[None]:
    """Drop the packets the server listening on `port` sends to this host's loopback clients (first in
    OUTPUT, so no ACCEPT of the host's comes before): each with `probability`, at random (iptables'
    statistic match: the losses a network between hosts can have), or all of them (None: the network
    lost the server, as far as its clients can tell: not even their packets are acknowledged). Needs
    root. `tag` marks the rule, so that one a killed run left is removed first. Fails unless the rule
    dropped something."""
    for rule in iptables("-S", "OUTPUT").splitlines():  # left by a run that was killed
        if tag in rule:
            iptables("-D", *shlex.split(rule)[1:])
    rule = ["OUTPUT", "-s", "127.0.0.1", "-d", "127.0.0.1", "-o", "lo", "-p", "tcp", "--sport", str(port)]
    if probability is not None:
        rule += ["-m", "statistic", "--mode", "random", "--probability", str(probability)]
    rule += ["-m", "comment", "--comment", tag, "-j", "DROP"]
    iptables("-I", rule[0], "1", *rule[1:])
    try:
        yield
        dropped = [int(line.split()[0]) for line in iptables("-nvxL", "OUTPUT").splitlines() if tag in line]
        assert dropped and dropped[0] > 0, "no packet was dropped"
    finally:
        iptables("-D", *rule)


# -- a PostgreSQL server of the test's own ------------------------------------------------------------

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, to restart for real without disturbing the shared one.

    initdb refuses to run as root, so the server runs as the `postgres` user (runuser); its data
    directory lives in a temporary directory; trust authentication, the superuser named `root`.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = free_port()

    @staticmethod
    def runnable() -> bool:
        """It runs as the postgres user (`runuser`), which only root may become."""
        return os.geteuid() == 0

    def _run(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        # -l: the server must not inherit our stdout, or the call never returns.
        self._run(
            str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", *extra, action, "-o", options
        )

    def start(self) -> None:
        self.directory.chmod(0o777)
        self._run(str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "root")
        self._ctl("start")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, connections are refused until it is back."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")

    @contextmanager
    def stalled(self) -> Iterator[None]:
        """Every process of the server stopped (SIGSTOP), as a server stalls on a disk that hangs while
        its host's kernel still answers for it: connections are accepted and every packet is
        acknowledged, and nothing is answered. SIGCONT when the block ends."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGSTOP)  # first: it starts no process meanwhile
        processes = [postmaster]
        try:
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:  # its parent
                        os.kill(int(stat.parent.name), signal.SIGSTOP)
                        processes.append(int(stat.parent.name))
            yield
        finally:
            for pid in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def accepts_connections(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user="root", dbname="postgres", connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def copy_schema_of(self, settings_dict: dict[str, Any]) -> None:
        """(Re)create the database `settings_dict` names here, with that database's schema (no rows)."""
        name = settings_dict["NAME"]
        source = ["-h", str(settings_dict["HOST"] or "127.0.0.1"), "-p", str(settings_dict["PORT"] or 5432)]
        source += ["-U", str(settings_dict["USER"] or "root")]
        target = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "root"]
        subprocess.run([str(POSTGRES_BIN / "dropdb"), *target, "--if-exists", "--force", name], check=True, timeout=60)
        subprocess.run([str(POSTGRES_BIN / "createdb"), *target, name], check=True, timeout=60)
        schema = subprocess.run(
            [str(POSTGRES_BIN / "pg_dump"), *source, "--schema-only", "--no-owner", "--no-privileges", name],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        subprocess.run(
            [str(POSTGRES_BIN / "psql"), *target, "-q", "-v", "ON_ERROR_STOP=1", "-d", name],
            input=schema.stdout, check=True, capture_output=True, timeout=60,
        )  # fmt: skip


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (POSTGRES_BIN / "initdb").exists() or shutil.which("runuser") is None:
        # The PostgreSQL pass runs beside a local PostgreSQL 15: its binaries missing is a broken set-up.
        pytest.fail(f"a private PostgreSQL needs {POSTGRES_BIN}/initdb (Debian's postgresql-15) and runuser")
    with tempfile.TemporaryDirectory(prefix="taskhub-pg-") as directory:
        server = PrivatePostgres(Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def default_database_on(server: PrivatePostgres) -> Iterator[None]:
    """Point the default database at `server` (same database name and schema), in every thread."""
    server.copy_schema_of(connections["default"].settings_dict)
    with default_database_settings(HOST="127.0.0.1", PORT=str(server.port), USER="root", PASSWORD=""):
        yield


# -- a Redis server of the test's own ------------------------------------------------------------------


@contextmanager
def private_redis() -> Iterator[str]:
    """A Redis server of the test's own (DEBUG allowed, nothing saved), so a test can stall it for real
    (`DEBUG SLEEP`) without stalling the shared one. Yields its URL."""
    import redis

    if shutil.which("redis-server") is None:
        pytest.fail("a private Redis needs redis-server (Debian's redis-server), which the test machines have")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--enable-debug-command", "yes", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port)
        assert wait_until(lambda: _pings(client), timeout=10), "redis-server did not start"
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


def _pings(client: Any) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def redis_stall(url: str, seconds: float) -> threading.Thread:
    """Stall the Redis server at `url` for `seconds` (DEBUG SLEEP from a connection of its own); the
    thread ends when the server answers again."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=seconds + 10)
    stall = threading.Thread(target=client.execute_command, args=("DEBUG", "SLEEP", str(seconds)), name="redis-stall")
    stall.start()
    return stall
