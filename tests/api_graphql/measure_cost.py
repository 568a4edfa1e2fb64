"""What one GraphQL read costs in this process: the bench's task(id) and tasks(first: 50) rows
(bench/run.py rows e and f), or `{ __typename }` (the floor: no field resolved), sent N times
through the WSGI application, with bench settings, a JWT and a warm cache. Not a test; run it under
callgrind to count instructions per request (docs/api/graphql.md, "What a request costs"):

    for n in 0 200; do PYTHONHASHSEED=0 BENCH_DATABASE_URL=postgres://root@127.0.0.1:5432/taskhub_bench_gqlrows \
      BENCH_REDIS_URL=redis://127.0.0.1:6379/7 valgrind --tool=callgrind --instr-atstart=no \
      --callgrind-out-file=/tmp/cg.$n .venv/bin/python -m tests.api_graphql.measure_cost task $n; done

Instructions per request = (total of n=200 - total of n=0) / 200 (a fixed PYTHONHASHSEED keeps runs
comparable); `--profile` prints cProfile's view instead
(PROFILE_SORT=cumulative and PROFILE_LINES=120 to see more of it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("row", choices=["task", "tasks", "typename"])
    parser.add_argument("count", type=int)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    from bench import run

    namespace = argparse.Namespace(
        database_url=os.environ.get("BENCH_DATABASE_URL", run.DEFAULT_DATABASE_URL),
        redis_url=os.environ.get("BENCH_REDIS_URL", run.DEFAULT_REDIS_URL),
    )
    env = run.server_environment(namespace)
    # Fixed secrets, so a second run can reuse the first one's data (seeding is not what is measured).
    env.update(DJANGO_SECRET_KEY="measure-cost-" + "s" * 50, JWT_SIGNING_KEY="measure-cost-" + "k" * 50)
    env.setdefault("METRICS_ENABLED", "false")
    run.ensure_database(namespace.database_url)
    fixture = _fixture(run, env)

    from config.wsgi import application  # as the bench's servers load it: the start-up heap frozen (core.startup)

    if args.row == "typename":  # the floor of every request: the HTTP layer and the operation, no field
        body = json.dumps({"query": "{ __typename }"}).encode()
    else:
        row = next(r for r in run.ROWS if r.key == ("e" if args.row == "task" else "f"))
        body = row.body(fixture.task_id).encode()

    def request() -> dict[str, Any]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/graphql/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {fixture.token}",
            "HTTP_ACCEPT": "application/json",  # the headers of the bench's bench/wrk/graphql.lua
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status: list[str] = []
        chunks = application(environ, lambda s, h, *a: status.append(s))
        content = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        assert status[0].startswith("200"), (status, content)
        payload = json.loads(content)
        assert "errors" not in payload, payload
        return payload

    for _ in range(20):  # warm: caches filled, token verified, documents parsed and validated
        request()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.count):
            request()
        profiler.disable()
        order, lines = os.environ.get("PROFILE_SORT", "tottime"), int(os.environ.get("PROFILE_LINES", "45"))
        pstats.Stats(profiler).sort_stats(order).print_stats(lines)
    else:
        _callgrind("on")
        for _ in range(args.count):
            request()
        _callgrind("off")


def _callgrind(state: str) -> None:
    """Under `valgrind --tool=callgrind --instr-atstart=no`, count only the measured requests."""
    import shutil
    import subprocess

    if "valgrind" in os.environ.get("LD_PRELOAD", "") and (control := shutil.which("callgrind_control")):
        subprocess.run([control, f"--instr={state}", str(os.getpid())], check=True, capture_output=True)


def _fixture(run: Any, env: dict[str, str]) -> Any:
    """The bench's data (run.prepare_data) unless the database holds it already."""
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()
    from django.db.utils import DatabaseError

    from api_rest.auth import TokenObtainSerializer
    from tasks.models import Task

    try:
        tasks = Task.objects.filter(owner__username=run.BENCH_USERNAME).order_by("created_at")
        if tasks.count() == run.TASK_COUNT:
            first = tasks.first()
            token = str(TokenObtainSerializer.get_token(first.owner).access_token)
            return run.Fixture(token=token, task_id=str(first.pk))
    except DatabaseError:
        pass
    return run.prepare_data(env)


if __name__ == "__main__":
    main()
