"""The floor under bench row (h): what grpcio's sync server costs before any taskhub code runs.

Serves one unary method from a bare `grpc.server` (a thread pool of 8, as `grpcserver` runs) pinned to
the server CPU, in two forms: a handler that returns a constant, and one that also does one Redis GET
of a 300-byte value (what `task_get` does on a cache hit). h2load loads each from the load CPU exactly
as bench/run.py loads row (h). Row (h) cannot beat the second line; the gap between them is taskhub's
own per-call cost (interceptor, auth, proto conversion).

    .venv/bin/python bench/grpc_floor.py [--duration 8] [--redis-url redis://127.0.0.1:6379/12]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from grpc_load import run_h2load

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
            cpu=args.load_cpu, port=port, method="floor.Floor/Get", message=b"\n\x01a", token="-",
            seconds=args.duration, warmup=2, clients=args.connections, streams=1, out_path=None,
        )  # fmt: skip
        if result.failed:
            raise SystemExit(f"{result.failed} calls failed")
        return result.rps
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    bare = measure(args, with_redis=False)
    redis_get = measure(args, with_redis=True)
    print(f"grpcio sync server, h2load -c{args.connections} -m1, server on CPU {args.server_cpu}")
    print(f"  constant reply:          {bare:7.0f} calls/s")
    print(f"  one Redis GET per call:  {redis_get:7.0f} calls/s")


if __name__ == "__main__":
    main()
