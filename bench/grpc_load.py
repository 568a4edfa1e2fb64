"""Unary gRPC load with h2load (Debian nghttp2-client), one server core loaded from the other.

h2load POSTs one pre-serialized, length-prefixed message per request with `content-type:
application/grpc` and `te: trailers`. It sees only HTTP statuses, and gRPC sends its status in the
trailers (an error is still HTTP 200), so `check_sample` calls the same method through a real gRPC
channel first and the row fails unless that call succeeds; h2load's per-request log gives p50/p99.
"""

from __future__ import annotations

import re
import shutil
import statistics
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: 1 byte 'compressed' flag (0), 4 bytes big-endian length, payload."""
    return struct.pack(">?I", False, len(message)) + message


@dataclass(frozen=True)
class GrpcResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    percentiles: dict[float, float]  # as bench/run.py's Result: 90.0, 90.1, … 99.9 and 100 (the slowest)
    failed: int


def ensure_h2load() -> str:
    path = shutil.which("h2load")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "nghttp2-client"], check=True, capture_output=True)
        path = shutil.which("h2load")
    if path is None:
        raise RuntimeError("h2load is not installed (Debian: nghttp2-client)")
    return path


def run_h2load(
    *,
    cpu: str,
    port: int,
    method: str,
    message: bytes,
    token: str,
    seconds: int,
    warmup: int,
    clients: int,
    streams: int,
    out_path: Path | None,
) -> GrpcResult:
    """Run h2load for `seconds` against `/<method>` and summarise its per-request log."""
    h2load = ensure_h2load()
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body.bin"
        body.write_bytes(grpc_frame(message))
        log_path = Path(tmp) / "requests.log"
        command = [
            "taskset", "-c", cpu, h2load,
            "-c", str(clients), "-m", str(streams), "-t", "1",
            "-D", str(seconds), "--warm-up-time", str(warmup),
            "-d", str(body),
            "-H", "content-type: application/grpc",
            "-H", "te: trailers",
            "-H", f"authorization: Bearer {token}",
            "--log-file", str(log_path),
            f"http://127.0.0.1:{port}/{method}",
        ]  # fmt: skip
        completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + warmup + 60)
        output = completed.stdout + completed.stderr
        if out_path is not None:
            shown = " ".join(part.replace(token, "<token>") for part in command)
            out_path.write_text(f"$ {shown}\n\n{output}")
        rows = [line.split("\t") for line in log_path.read_text().splitlines() if line.strip()]
    latencies = sorted(int(row[2]) / 1000 for row in rows if row[1] == "200")
    failed = sum(1 for row in rows if row[1] != "200")
    match = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", output)
    if completed.returncode != 0 or match is None or not latencies:
        raise RuntimeError(f"h2load failed:\n{output[-2000:]}")
    return GrpcResult(
        requests=len(latencies),
        rps=float(match.group(1)),
        p50_ms=statistics.median(latencies),
        p99_ms=_at(latencies, 99.0),
        percentiles={tenth / 10: _at(latencies, tenth / 10) for tenth in range(900, 1000)} | {100.0: latencies[-1]},
        failed=failed,
    )


def _at(latencies: list[float], percentile: float) -> float:
    """The latency at `percentile` of the sorted `latencies`."""
    return latencies[min(len(latencies) - 1, int(len(latencies) * percentile / 100))]
