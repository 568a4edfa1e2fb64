"""bench/run.py's own logic that decides what a run says: the environments of the peer rows and
taskhub's twins, and the verdicts of the side-by-side table (bench/README.md, "How to read the ratios")."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import run


def _result(key: str, rps: float, cpu_ms: float, p99_ms: float = 5.0, **extra: object) -> run.Result:
    row = next(row for row in run.ROWS if row.key == key)
    result = run.Result(row, requests=int(rps * 10), seconds=10.0, p99_ms=p99_ms, cpu_ms=cpu_ms)
    for name, value in extra.items():
        setattr(result, name, value)
    return result


def test_every_row_runs_once_in_the_run_order():
    keys = [key for item in run.RUN_ORDER for key in (item if isinstance(item, tuple) else (item,))]
    assert sorted(keys) == sorted(row.key for row in run.ROWS)
    assert {row.server for row in run.ROWS} - {""} <= set(run.SERVER_VARIANTS)


def test_the_full_profile_counts_logs_and_shares_metrics(tmp_path: Path):
    env = {"METRICS_ENABLED": "false", "OTEL_TRACES_EXPORTER": "otlp", "LOG_LEVEL": "WARNING", "X": "1"}
    for variant in ("full", "peer-rest-full"):
        variables = run.variant_environment(env, variant, tmp_path / variant)
        assert variables["RATE_LIMITS_ENABLED"] == "true"
        assert variables["RATE_LIMIT_USER"] == variables["RATE_LIMIT_ANON"] == run.FULL_PROFILE_RATE
        assert variables["LOG_LEVEL"] == "INFO"
        assert variables["METRICS_ENABLED"] == "true"
        assert variables["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / variant)
        assert (tmp_path / variant).is_dir()
        assert not any(name.startswith("OTEL_") for name in variables)
        assert variables["X"] == "1"


def test_the_twins_and_peers_of_row_a_run_in_its_environment(tmp_path: Path):
    env = {"METRICS_ENABLED": "true", "RATE_LIMITS_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    assert run.variant_environment(env, "nocache", tmp_path / "a") == {**env, "CACHE_ENABLED": "false"}
    for variant in ("two", "peer-rest", "peer-graphql", "peer-floor", "peer-grpc", "grpc-floor-redis"):
        assert run.variant_environment(env, variant, tmp_path / variant) == env
    assert not list(tmp_path.iterdir())  # no multiprocess directory for them


def test_the_wsgi_servers_threads_are_not_the_asgi_peers(tmp_path: Path):
    """GRANIAN_BLOCKING_THREADS sets the threads of taskhub's WSGI server; an ASGI granian given more
    than one refuses to start, so the peers run without the caller's GRANIAN_* variables."""
    env = {"METRICS_ENABLED": "true", "GRANIAN_BLOCKING_THREADS": "2", "GRANIAN_LOG_LEVEL": "info", "X": "1"}
    for variant in ("two", "nocache", "full"):
        assert run.variant_environment(env, variant, tmp_path / variant)["GRANIAN_BLOCKING_THREADS"] == "2"
    for variant in ("peer-rest", "peer-graphql", "peer-floor", "peer-rest-full"):
        variables = run.variant_environment(env, variant, tmp_path / variant)
        assert not any(name.startswith("GRANIAN_") for name in variables)
        assert variables["X"] == "1"


def test_the_twin_row_runs_only_with_twin_and_its_server_has_those_variables(tmp_path: Path):
    """--twin NAME=VALUE adds row (A), (a) on a server whose environment also has those variables, and
    (a) itself, in whose group (A) runs; without --twin the row is not run, and cannot be asked for."""
    assert run.TWIN_ROW not in run.parse_args([]).rows
    assert run.parse_args([]).twin == {}
    args = run.parse_args(["--rows", "q", "--twin", "GRANIAN_BLOCKING_THREADS=2", "--twin", "X= a=b "])
    assert args.rows == "qaA"
    assert args.twin == {"GRANIAN_BLOCKING_THREADS": "2", "X": " a=b "}
    assert any(run.TWIN_ROW in group and "a" in group for group in run.RUN_ORDER if isinstance(group, tuple))
    refused = (
        ["--rows", "aA"],  # (A) without --twin
        ["--twin", "NOVALUE"],
        ["--twin", "=1"],
        ["--twin", "A B=1"],
        ["--twin", "X=1", "--twin", "X=2"],
        ["--twin", "GRANIAN_WORKERS=2"],  # granian's command line sets it
        ["--server", "uvicorn", "--twin", "GRANIAN_RUNTIME_MODE=st"],
    )
    for argv in refused:
        with pytest.raises(SystemExit):
            run.parse_args(argv)

    env = {"METRICS_ENABLED": "true", "GRANIAN_BLOCKING_THREADS": "4", "X": "1"}
    server = run.variant_server(args, "twin", env, tmp_path, tmp_path)
    assert server.env == {**env, "GRANIAN_BLOCKING_THREADS": "2", "X": " a=b "}
    assert server.command[server.command.index("--blocking-threads") + 1] == "2"
    for variant in ("nocache", "two", "full", "bare", "peer-rest", "peer-grpc"):  # only the twin's
        assert run.variant_environment(env, variant, tmp_path / variant, args.twin).get("X") == "1"
    assert "(A)'s server also has GRANIAN_BLOCKING_THREADS=2 X=' a=b '" in run.describe_run(args)
    assert "also has" not in run.describe_run(run.parse_args([]))

    by_key = {key: _result(key, rps, cpu) for key, rps, cpu in (("a", 2_000, 0.40), ("A", 2_100, 0.38))}
    line = next(line for line in run.render_peers(by_key, markdown=True, connections=32) if "(A) / (a)" in line)
    assert line.split(" | ")[2:6] == ["2,100", "2,000", "1.05x", "1.05x"]
    records = {record["row"]: record for record in run.result_records(list(by_key.values()), args.twin)}
    assert records["A"]["twin"] == args.twin
    assert "twin" not in records["a"]


def test_the_header_names_taskhub_s_settings_the_bench_s_environment_passes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run made with a setting in its environment (every taskhub server gets it) says so; one the
    bench sets itself, or a variable taskhub does not read, is not named."""
    args = run.parse_args([])
    for name in (*run.documented_settings(), "NOT_A_SETTING"):
        monkeypatch.delenv(name, raising=False)
    assert "servers also have" not in run.describe_run(args)

    monkeypatch.setenv("CACHE_LOCAL_SECONDS", "30")
    monkeypatch.setenv("CACHE_TTL", "60 s")
    monkeypatch.setenv("RATE_LIMITS_ENABLED", "true")  # the bench's own (false) wins
    monkeypatch.setenv("NOT_A_SETTING", "1")

    assert run.describe_run(args).endswith("; taskhub's servers also have CACHE_LOCAL_SECONDS=30 CACHE_TTL='60 s'")
    assert run.server_environment(args)["CACHE_LOCAL_SECONDS"] == "30"
    assert run.server_environment(args)["RATE_LIMITS_ENABLED"] == "false"


def test_a_missed_target_says_by_how_much_and_a_met_one_says_so():
    results = {
        "a": _result("a", 390, 0.65),
        "q": _result("q", 1000, 0.20),
        "b": _result("b", 600, 1.6),
        "f": _result("f", 300, 3.0),
        "z": _result("z", 70, 5.0),
    }
    lines = "\n".join(run.render_peers(results, markdown=True, connections=32))
    assert "| (a) / (q) | 390 | 1,000 | 0.39x | 0.31x | - | >= 1x | misses by 61% |" in lines
    assert "| (f) / (b) | 300 | 600 | 0.50x | 0.53x | - | >= 0.5x | meets |" in lines
    assert "| (a) / (z) | 390 | 70 | 5.57x | 7.69x | - | >= 5x | meets |" in lines
    assert "(b) / (s)" not in lines  # a comparison is shown only when both rows ran
    assert "<= 25 ms: meets" in lines and "this run used" not in lines


def test_a_skipped_peer_and_a_slow_cached_read_are_reported():
    results = {
        "h": _result("h", 2000, 0.5, p99_ms=30.0),
        "v": _result("v", 0, 0.0, skipped="no grpc_peer.py"),
        "a": _result("a", 1000, 0.6, p99_ms=9.0),
    }
    lines = run.render_peers(results, markdown=False, connections=8)
    table = "\n".join(lines)
    assert "(v) SKIPPED" in table
    assert lines[-1].startswith("p99 of every cached read ((a), (h)) <= 25 ms: misses: (h) 30.0 ms")
    assert lines[-1].endswith("the target is judged at --connections 32, this run used 8")
    rendered = run.render_table(list(results.values()), markdown=False, connections=8)
    assert "(v) grpcio peer: GetTask" in rendered and "(v) SKIPPED: no grpc_peer.py" in rendered


def test_each_round_of_a_group_gives_its_own_ratio_beside_the_runs():
    """A run's ratio sums its rounds; the per-round column says how far one round's ratio strayed from
    it, and in how many rounds the target was met."""
    rest, grpc = ("a", "q"), ("h", "x")
    results = {
        "a": _result("a", 2000, 0.4, round_rps=[1900.0, 2100.0, 2000.0], group=rest),
        "q": _result("q", 2000, 0.4, round_rps=[2000.0, 1950.0, 2050.0], group=rest),
        "h": _result("h", 3000, 0.3, round_rps=[3000.0, 3000.0, 3000.0], group=grpc),
        "x": _result("x", 5000, 0.2, round_rps=[5000.0, 6000.0, 4000.0], group=grpc),
        "w": _result("w", 4000, 0.25, round_rps=[4000.0, 4000.0, 4000.0], group=("w",)),  # not (h)'s rounds
    }
    lines = "\n".join(run.render_peers(results, markdown=True, connections=32))
    assert "| (a) / (q) | 2,000 | 2,000 | 1.00x | 1.00x | 0.95-1.08x; 1/3 meet | >= 1x | meets |" in lines
    assert "| (h) / (x) | 3,000 | 5,000 | 0.60x | 0.67x | 0.50-0.75x | - | - |" in lines
    assert "| (h) / (w) | 3,000 | 4,000 | 0.75x | 0.83x | - | >= 0.85x | misses by 12% |" in lines
    assert run.round_ratios(results["a"], results["q"]) == pytest.approx([0.95, 2100 / 1950, 2000 / 2050])
    # One round is no spread; a round in which the other row made no request gives no ratio.
    one = {key: _result(key, 2000, 0.4, round_rps=[2000.0], group=rest) for key in rest}
    assert run.round_ratios(one["a"], one["q"]) == []
    stalled = _result("q", 2000, 0.4, round_rps=[2000.0, 0.0, 2000.0], group=rest)
    assert run.round_ratios(results["a"], stalled) == []
    text = run.render_peers(results, markdown=False, connections=32)
    header, rule, first = text[0], text[1], text[2]
    assert header.split()[:2] == ["comparison", "rows"] and "per round" in header
    assert first.startswith("REST GET one task (cache hit) / FastAPI peer")
    cell = "0.95-1.08x; 1/3 meet"
    assert first.index(cell) + len(cell) == header.index("per round") + len("per round")  # right-aligned
    assert len(rule) == len(first) == len(header)


def test_a_failed_row_that_counted_requests_is_reported_as_failed():
    """A row fails with requests counted (non-2xx answers, one failed slice of its rounds): the
    comparison says which row failed instead of giving a ratio, and the report is still made."""
    results = {
        "a": _result("a", 2000, 0.4, failure="12 non-2xx responses", round_rps=[2000.0, 2000.0], group=("a", "q")),
        "q": _result("q", 2500, 0.3, round_rps=[2500.0, 2500.0], group=("a", "q")),
        "p": _result("p", 1500, 0.5),
        "r": _result("r", 1400, 0.5, skipped="no peer venv"),
    }
    lines = "\n".join(run.render_peers(results, markdown=True, connections=32))
    assert "| (a) / (q) | - | - | - | - | - | >= 1x | (a) FAILED |" in lines
    assert "| (p) / (r) | - | - | - | - | - | >= 1x | (r) SKIPPED |" in lines


def _slice(requests: int, tail: dict[float, float], slowest: float) -> run.Result:
    """A slice of row (a) whose latencies are `tail`'s from each of its percentiles to the next."""
    row = next(row for row in run.ROWS if row.key == "a")
    percentiles = {tenth / 10: 0.0 for tenth in range(900, 1000)} | {100.0: slowest}
    for start, ms in sorted(tail.items()):
        percentiles.update({p: ms for p in percentiles if p >= start and p < 100.0})
    return run.Result(row, requests=requests, seconds=2.0, p99_ms=percentiles[99.0], percentiles=percentiles)


def test_the_p99_of_a_row_in_slices_is_that_of_all_its_requests():
    steady = _slice(5000, {90.0: 10.0, 99.5: 12.0}, slowest=15.0)
    assert run.pooled_percentile([steady], 99.0) == 10.0  # one slice: its own p99
    # One slice of five with a slow last 2%: 0.4% of all the requests, under the pooled p99.
    stalled = _slice(5000, {90.0: 10.0, 98.0: 40.0}, slowest=60.0)
    assert stalled.p99_ms == 40.0
    assert run.pooled_percentile([steady, steady, stalled, steady, steady], 99.0) == 10.0
    # Two of two: 2% of all the requests are slow, so the p99 is.
    assert run.pooled_percentile([stalled, stalled], 99.0) == 40.0
    # Every request of `steady` and 98.9% of `other`'s take at most 20 ms: 99.45% of them all.
    other = _slice(5000, {90.0: 20.0, 99.0: 30.0}, slowest=31.0)
    assert run.pooled_percentile([steady, other], 99.0) == 20.0
    assert run.pooled_percentile([steady, other], 99.5) == 30.0


def test_the_p99_target_line_shows_the_highest_slice_beside_the_pooled_p99():
    results = {
        "a": _result("a", 2500, 0.4, p99_ms=17.0, slice_p99_ms=21.5),
        "b": _result("b", 2000, 0.5, p99_ms=26.0, slice_p99_ms=34.0),
    }
    lines = run.render_peers({**results, "q": _result("q", 3000, 0.3)}, markdown=True, connections=32)
    assert lines[-1] == (
        "p99 of every cached read ((a), (b)) <= 25 ms: misses: (b) 26.0 ms "
        "(highest (b) 26.0 ms; highest p99 of one slice (b) 34.0 ms)"
    )


def test_a_server_cpu_time_is_split_into_user_and_system(tmp_path: Path):
    """Server.cpu_times reads the workers' utime and stime apart: a process that spends its time in the
    kernel (reading /dev/zero: the kernel fills the buffer) against one that spends it in Python."""
    kernel_bound = "import os\nzero = os.open('/dev/zero', os.O_RDONLY)\nwhile True: os.read(zero, 1 << 22)"
    user_bound = "while True: sum(range(1000))"
    split = {}
    for name, code in (("kernel", kernel_bound), ("user", user_bound)):
        server = run.Server("grpc", {}, 0, "0", tmp_path / f"{name}.log", program=[sys.executable, "-c", code])
        server.process = subprocess.Popen(server.command[3:])  # without taskset's pinning: any CPU does
        try:
            deadline = time.monotonic() + 30
            while server.cpu_seconds() < 0.5 and time.monotonic() < deadline:
                time.sleep(0.05)
            split[name] = server.cpu_times()
        finally:
            server.stop()
    (kernel_user, kernel_system), (user_user, user_system) = split["kernel"], split["user"]
    assert kernel_system > kernel_user
    assert user_user > 4 * user_system
    assert sum(split["user"]) == pytest.approx(0.5, abs=0.3)
