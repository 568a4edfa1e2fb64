"""Instructions (callgrind) of a cached gRPC GetTask on the server, or a cProfile of it.

    .venv/bin/python bench/profile_rest.py --prepare                     # migrate, seed (the same data)
    .venv/bin/python bench/profile_grpc.py                               # taskhub, the peer, the floor
    .venv/bin/python bench/profile_grpc.py --servers taskhub -n 1000 --deadline 30
    .venv/bin/python bench/profile_grpc.py --cprofile -n 2000           # where taskhub's time goes
    PROFILE_OUT=get.prof .venv/bin/python bench/profile_grpc.py --cprofile   # ... and its stats to a file

Each server (`manage.py grpcserver`, bench/peers/grpc_peer.py, bench/grpc_floor.py's Redis floor)
runs under `valgrind --tool=callgrind` in a process of its own; a client outside valgrind makes
`--warmup` calls, or `--warmup` + `-n` calls, one at a time, then stops the server with SIGTERM.
Instructions per call = (I(warmup + n) - I(warmup)) / n: callgrind counts are deterministic, so
differences show on a shared, noisy machine where wall-clock timings do not. Everything in the
server process is counted (grpcio's threads, redis-py, the interceptor); the client is not.

The environment is bench/profile_rest.py's (bench settings, JWT, Redis cache, PostgreSQL, metrics
on; rate limits, tracing and the access log off), BENCH_DATABASE_URL / BENCH_REDIS_URL included;
grpcserver runs without health, reflection and its /metrics port, which no call here uses.
`--deadline S` sends every call with a deadline S seconds away (the interceptor's time budget).
`--cprofile` runs taskhub's server in this process instead and profiles the interceptor's calls.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.profile_rest import REDIS_URL, USERNAME, environment  # noqa: E402

_COLLECTED = re.compile(rb"Collected : (\d+)")


def server_command(name: str, port: int) -> list[str]:
    python = sys.executable
    return {
        "taskhub": [python, str(ROOT / "manage.py"), "grpcserver", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", "8", "--no-reflection", "--no-health", "--metrics-port", "0"],
        "peer": [python, str(ROOT / "bench/peers/grpc_peer.py"), "--port", str(port)],
        "floor": [python, str(ROOT / "bench/grpc_floor.py"), "--port", str(port), "--mode", "redis",
                  "--redis-url", REDIS_URL],
    }[name]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def caller(name: str, port: int, deadline: float | None) -> Any:
    """A function making one call of the server's GetTask (the floor's Get), checking its answer."""
    import grpc

    from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
    from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
    from bench.grpc_floor import FLOOR_METHOD, FLOOR_REQUEST

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=600)  # Django's start under valgrind is slow
    if name == "floor":
        get = channel.unary_unary("/" + FLOOR_METHOD)
        return lambda: get(FLOOR_REQUEST, timeout=deadline)
    task_id, token = task_and_token()
    stub = pb_grpc.TaskServiceStub(channel)
    request = pb.GetTaskRequest(id=task_id)
    metadata = (("authorization", f"Bearer {token}"),)

    def call() -> None:
        reply = stub.GetTask(request, metadata=metadata, timeout=deadline)
        assert reply.task.id == task_id, reply

    return call


def task_and_token() -> tuple[str, str]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from api_rest.auth import TokenObtainSerializer
    from tasks.models import Task

    user = get_user_model().objects.get(username=USERNAME)
    task = Task.objects.filter(owner=user).order_by("created_at").first()
    assert task is not None, "run bench/profile_rest.py --prepare first"
    return str(task.pk), str(TokenObtainSerializer.get_token(user).access_token)


def instructions(name: str, calls: int, deadline: float | None) -> int:
    """The instructions callgrind counted in the server process over its life, with `calls` calls."""
    port = free_port()
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *server_command(name, port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        call = caller(name, port, deadline)
        for _ in range(calls):
            call()
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=600)
    found = _COLLECTED.search(stderr)
    if found is None:
        raise SystemExit(f"no callgrind total from {name}:\n{stderr.decode(errors='replace')[-2000:]}")
    return int(found.group(1))


def cprofile(calls: int, warmup: int, deadline: float | None) -> None:
    """Serve in this process; profile what the interceptor runs for each call after the warm-up."""
    import cProfile
    import pstats

    import django

    django.setup()
    from api_grpc import interceptors
    from api_grpc.server import build_server

    profiler = cProfile.Profile()
    profiling = False
    original = interceptors.TaskServiceInterceptor.call

    def profiled(self: Any, *args: Any) -> Any:
        if not profiling:
            return original(self, *args)
        profiler.enable()  # in the pool thread that runs the call; calls come one at a time
        try:
            return original(self, *args)
        finally:
            profiler.disable()

    interceptors.TaskServiceInterceptor.call = profiled  # type: ignore[method-assign]
    running = build_server(host="127.0.0.1", port=0, workers=8, reflection_enabled=False, health_enabled=False)
    try:
        call = caller("taskhub", running.port, deadline)
        for _ in range(warmup):
            call()
        profiling = True
        for _ in range(calls):
            call()
    finally:
        running.shutdown(0).wait()
    if os.environ.get("PROFILE_OUT"):
        profiler.dump_stats(os.environ["PROFILE_OUT"])
    pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="taskhub,peer,floor", help="comma-separated: taskhub, peer, floor")
    parser.add_argument("-n", type=int, default=1000, help="measured calls")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--deadline", type=float, default=None, help="seconds; default: no deadline")
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    environment(full=False)
    if args.cprofile:
        cprofile(args.n, args.warmup, args.deadline)
        return
    for name in args.servers.split(","):
        started = time.monotonic()
        base = instructions(name, args.warmup, args.deadline)
        total = instructions(name, args.warmup + args.n, args.deadline)
        print(
            f"{name:8} {(total - base) / args.n:12,.0f} instructions per call"
            f"  (I({args.warmup + args.n}) - I({args.warmup})) / {args.n}, {time.monotonic() - started:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
