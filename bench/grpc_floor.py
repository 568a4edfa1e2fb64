"""The floor under bench row (h): what grpcio's sync server costs before any taskhub code runs.

Serves one unary method from a bare `grpc.server` (a thread pool of 8, as `grpcserver` runs) pinned to
the server CPU, in two forms: a handler that returns a constant, and one that also does one Redis GET
of a 300-byte value (what `task_get` does on a cache hit). h2load loads each from the load CPU exactly
as bench/run.py loads row (h). Row (h) cannot beat the second line; the gap between them is taskhub's
own per-call cost (interceptor, auth, proto conversion).

    .venv/bin/python bench/grpc_floor.py [--duration 8] [--redis-url redis://127.0.0.1:6379/12]

With `--port PORT` it measures nothing: it serves the floor on 127.0.0.1:PORT in this process (no CPU
pinning: the caller pins it) until SIGTERM, for bench/run.py to load like any row. The method is
`floor.Floor/Get`; any request bytes do (bench/run.py sends `FLOOR_REQUEST`); `--mode redis` (the
default) does the one Redis GET per call of REDIS_URL (or `--redis-url`), `--mode constant` does not.
It prints `ready` once it listens:

    .venv/bin/python bench/grpc_floor.py --port PORT [--mode redis|constant]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from grpc_load import run_h2load

FLOOR_METHOD = "floor.Floor/Get"
FLOOR_REQUEST = b"\n\x01a"

SERVER = r"""
import sys, threading
from concurrent import futures
import grpc, redis
url, port, with_redis = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
redis.Redis.from_url(url).set("bench-floor", b"x" * 300)
local = threading.local()
def handle(request, context):
    if with_redis:
        client = getattr(local, "client", None) or redis.Redis.from_url(url)
        local.client = client
        client.get("bench-floor")
    return b"\n\x03abc"
handler = grpc.method_handlers_generic_handler("floor.Floor", {"Get": grpc.unary_unary_rpc_method_handler(handle)})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port(f"127.0.0.1:{port}")
server.start()
print("ready", flush=True)
server.wait_for_termination()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(args: argparse.Namespace, with_redis: bool) -> float:
    port = free_port()
    server = subprocess.Popen(
        [
            "taskset",
            "-c",
            args.server_cpu,
            sys.executable,
            "-c",
            SERVER,
            args.redis_url,
            str(port),
            str(int(with_redis)),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise SystemExit("the floor server did not start")
        time.sleep(0.5)
        result = run_h2load(
            cpu=args.load_cpu, port=port, method=FLOOR_METHOD, message=FLOOR_REQUEST, token="-",
            seconds=args.duration, warmup=2, clients=args.connections, streams=1, out_path=None,
        )  # fmt: skip
        if result.failed:
            raise SystemExit(f"{result.failed} calls failed")
        return result.rps
    finally:
        server.terminate()
        server.wait(10)


def serve(port: int, mode: str, redis_url: str) -> None:
    """Serve the floor in this process until SIGTERM or SIGINT (the same server code as `measure`)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.argv = ["floor", redis_url, str(port), "1" if mode == "redis" else "0"]
    with contextlib.suppress(KeyboardInterrupt):
        exec(compile(SERVER, "grpc_floor_server", "exec"), {"__name__": "grpc_floor_server"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="serve the floor on this port until SIGTERM; measure nothing")
    parser.add_argument("--mode", choices=("redis", "constant"), default="redis", help="with --port: what a call does")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"))
    args = parser.parse_args()
    if args.port is not None:
        serve(args.port, args.mode, args.redis_url)
        return
    bare = measure(args, with_redis=False)
    redis_get = measure(args, with_redis=True)
    print(f"grpcio sync server, h2load -c{args.connections} -m1, server on CPU {args.server_cpu}")
    print(f"  constant reply:          {bare:7.0f} calls/s")
    print(f"  one Redis GET per call:  {redis_get:7.0f} calls/s")


if __name__ == "__main__":
    main()
