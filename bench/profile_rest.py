"""Instructions (callgrind) or a cProfile of REST requests, in process, without a server.

    .venv/bin/python bench/profile_rest.py --prepare                 # migrate, seed, print nothing else
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/profile_rest.py --path one -n 0       # instructions of start-up + warm-up
    valgrind ... -n 200                                              # ... + 200 requests
    .venv/bin/python bench/profile_rest.py --path list -n 2000 --cprofile   # where the time goes
    taskset -c 0 .venv/bin/python bench/profile_rest.py --layers -n 400     # what each middleware layer costs
    taskset -c 0 .venv/bin/python bench/profile_rest.py --stages -n 300     # what each stage of a GET adds
    ... --path graphql-list                                          # bench/run.py's row (f)
    valgrind ... --without SessionMiddleware,CsrfViewMiddleware -n 200  # a chain without those layers
    PROFILE_OUT=one.prof .venv/bin/python bench/profile_rest.py --cprofile   # ... and its stats to a file

Instructions per request = (I(n) - I(0)) / n: callgrind counts are deterministic, so small
differences show on a shared, noisy machine where wall-clock timings do not. The environment is
the bench server's (bench/run.py `server_environment`: bench settings, production settings
otherwise, JWT, Redis cache, PostgreSQL, metrics on, rate limits off), with the database and Redis
given by BENCH_DATABASE_URL / BENCH_REDIS_URL. `--full` switches on rate limits (counted, never
reached), the INFO access log and multiprocess metrics (the "full" profile of bench/README.md).
Every request is checked for a 200 first.

`--layers` times the request through one handler per MIDDLEWARE list, each with one layer left out,
built in this process and timed interleaved (`--rounds` rounds of `-n` requests each): a layer's cost
is the median time with every layer minus the median without it. Wall-clock time, so on a quiet
machine and one CPU (taskset); differences under ~5 µs are noise.

`--stages` splits a cached GET of one task (`--path one`) into what each stage of the request adds,
by the process's CPU time (`time.process_time`: user + system, without the wait for Redis), timed
interleaved as `--layers` is. Each stage is a request through config.wsgi's handler class:

    django        no middleware; a view answering fixed bytes: Django's handler, URL resolving (the
                  same one include as the service's route), signals, request and response objects
    + credential  that view also checks the bearer token (core.auth, its verification remembered)
    + cache read  ... and reads the task's row from Redis and its JSON: the view's work, without DRF
    + DRF         the service's TaskDetailApi, no middleware: DRF's dispatch around the same work
    + middleware  the service's handler as the servers run it: every MIDDLEWARE layer

and, for scale, one Redis GET round trip three ways: redis-py's client, the held connection the
cache reads on (core.redis_cache), and a bare socket (sendall + recv_into).
"""

from __future__ import annotations

import argparse
import atexit
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/taskhub_bench_profile")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
USERNAME = "profile-bench"
TASKS = 60


def environment(full: bool) -> None:
    os.environ.pop("DJANGO_DEBUG", None)
    if full:
        from bench.run import FULL_PROFILE_RATE

        # bench/run.py's full profile: limits counted, never reached (at the default 600/m every
        # request past the 600th of a minute would be a 429), metrics in multiprocess mode (files in
        # a fresh directory, unless one is given; prometheus_client reads the variable on import).
        os.environ.update(RATE_LIMIT_USER=FULL_PROFILE_RATE, RATE_LIMIT_ANON=FULL_PROFILE_RATE)
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            directory = tempfile.mkdtemp(prefix="taskhub-profile-metrics-")
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_SECRET_KEY="profile-secret-key-" + "x" * 40,
        JWT_SIGNING_KEY="profile-jwt-key-" + "y" * 40,
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CACHE_KEY_PREFIX="taskhub-profile",
        SECURE_SSL_REDIRECT="false",
        RATE_LIMITS_ENABLED="true" if full else "false",
        LOG_LEVEL="INFO" if full else "WARNING",
        # Under valgrind, on a loaded machine, 0.25 s can pass before Redis' answer is read: a cache
        # fault would send requests to the database and skew the count.
        REDIS_SOCKET_TIMEOUT="10",
        REDIS_CONNECT_TIMEOUT="10",
    )


def prepare() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from core.auth import actor_from_user
    from tasks.models import Task
    from tasks.services import task_create

    call_command("migrate", interactive=False, verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username=USERNAME)
    Task.objects.filter(owner=user).delete()
    actor = actor_from_user(user)
    for n in range(TASKS):
        task_create(
            actor=actor,
            data={
                "title": f"Profile task {n:03d}",
                "description": f"Task {n} of the profile. " * (1 + n % 4),
                "priority": "high",
                "tags": [f"tag{n % 7}", "bench"],
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true")
    parser.add_argument("--path", choices=["one", "list", "baseline", "graphql-list"], default="one")
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--layers", action="store_true", help="the time each middleware layer costs")
    parser.add_argument("--stages", action="store_true", help="the CPU time each stage of a cached GET adds")
    parser.add_argument("--rounds", type=int, default=21, help="with --layers and --stages")
    parser.add_argument(
        "--without", default="", metavar="LAYER,...", help="serve with these MIDDLEWARE layers (class names) left out"
    )
    args = parser.parse_args()
    environment(args.full)

    import django

    django.setup()
    if args.prepare:
        prepare()
        return
    from django.contrib.auth import get_user_model

    from api_rest.auth import TokenObtainSerializer
    from tasks.models import Task

    user = get_user_model().objects.get(username=USERNAME)
    task = Task.objects.filter(owner=user).order_by("created_at").first()
    assert task is not None, "run --prepare first"
    token = str(TokenObtainSerializer.get_token(user).access_token)
    path, query = {
        "one": (f"/api/v1/tasks/{task.pk}", ""),
        "list": ("/api/v1/tasks", "limit=50"),
        "baseline": (f"/bench/baseline/tasks/{task.pk}", ""),
        "graphql-list": ("/graphql/", ""),
    }[args.path]
    payload = b""
    if args.path == "graphql-list":  # bench/run.py's row (f), POSTed as its Lua script does
        from bench.run import PAGE_QUERY

        payload = PAGE_QUERY.body(str(task.pk)).encode()
    from config.wsgi import application as app  # as the servers load it (core.db's receivers, the heap frozen)

    if args.without:
        app = without_layers(app, set(args.without.split(",")), parser)

    base = {
        "REQUEST_METHOD": "POST" if payload else "GET",
        "CONTENT_TYPE": "application/json" if payload else "",
        "CONTENT_LENGTH": str(len(payload)) if payload else "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_ACCEPT": "*/*",
        "HTTP_USER_AGENT": "wrk",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        statuses.append(status)

    def request(app: Any = app) -> bytes:
        environ = dict(base, **{"wsgi.input": io.BytesIO(payload)})
        response = app(environ, start_response)
        body = b"".join(response)
        response.close()
        return body

    for _ in range(args.warmup):
        body = request()
    assert statuses and all(s.startswith("200") for s in statuses), (statuses[-1], body[:300])
    assert b'"errors"' not in body, body[:300]  # GraphQL answers its errors with a 200
    if args.cprofile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.n):
            request()
        profiler.disable()
        if os.environ.get("PROFILE_OUT"):
            profiler.dump_stats(os.environ["PROFILE_OUT"])
        pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(60)
    elif args.layers:
        layer_costs(request, args.n, args.rounds)
    elif args.stages:
        assert args.path == "one", "--stages splits the GET of one task (--path one)"
        stage_costs(base, str(task.pk), args.n, args.rounds)
    else:
        for _ in range(args.n):
            request()
    assert all(s.startswith("200") for s in statuses), statuses[-1]


def without_layers(app: Any, names: set[str], parser: argparse.ArgumentParser) -> Any:
    """A handler like `app` with the MIDDLEWARE layers of these class names left out (an experiment:
    what a shorter chain would save)."""
    from django.conf import settings
    from django.test import override_settings

    from config.wsgi import Application

    kept = [layer for layer in settings.MIDDLEWARE if layer.rsplit(".", 1)[1] not in names]
    if unknown := names - {layer.rsplit(".", 1)[1] for layer in settings.MIDDLEWARE}:
        parser.error(f"--without: not in MIDDLEWARE: {', '.join(sorted(unknown))}")
    with override_settings(MIDDLEWARE=kept):
        return Application()


def layer_costs(request: Callable[[Any], bytes], per_round: int, rounds: int) -> None:
    from django.conf import settings
    from django.test import override_settings

    from config.wsgi import Application

    every = list(settings.MIDDLEWARE)
    handlers = {"(every layer)": Application()}
    for name in every:
        with override_settings(MIDDLEWARE=[other for other in every if other != name]):
            handlers[name.rsplit(".", 1)[1]] = Application()
    times: dict[str, list[float]] = {name: [] for name in handlers}
    for round_ in range(rounds + 1):  # the first round warms every handler up, unmeasured
        for name, handler in handlers.items():
            started = time.perf_counter()
            for _ in range(per_round):
                request(handler)
            if round_:
                times[name].append((time.perf_counter() - started) / per_round * 1e6)
    reference = statistics.median(times.pop("(every layer)"))
    print(f"{'every layer':30} {reference:7.1f} µs a request (median of {rounds} rounds of {per_round})")
    for name, measured in times.items():
        cost = reference - statistics.median(measured)
        print(f"{name:30} {cost:+7.1f} µs ({cost / reference:+.1%})")


def stage_costs(base: dict[str, Any], task_id: str, per_round: int, rounds: int) -> None:
    import socket
    from types import ModuleType
    from uuid import UUID

    import redis
    from django.conf import settings
    from django.core.cache import cache
    from django.http import HttpRequest, HttpResponse
    from django.test import override_settings
    from django.urls import include, path

    from api_rest.apis import _row_json
    from api_rest.responses import JsonBytesResponse
    from config.wsgi import Application
    from core.auth import authenticate_credentials
    from tasks.cache import task_key
    from tasks.selectors import ROW_INDEX, task_get_row

    body = b'{"stage":"django"}'

    def django_view(request: HttpRequest, task_id: Any) -> HttpResponse:
        return JsonBytesResponse(body, headers={"ETag": '"1"'})

    def credential_view(request: HttpRequest, task_id: Any) -> HttpResponse:
        authenticate_credentials(authorization=request.META.get("HTTP_AUTHORIZATION"), api_key=None)
        return JsonBytesResponse(body, headers={"ETag": '"1"'})

    def cache_view(request: HttpRequest, task_id: Any) -> HttpResponse:
        actor = authenticate_credentials(authorization=request.META.get("HTTP_AUTHORIZATION"), api_key=None)
        assert actor is not None
        row = task_get_row(actor=actor, task_id=str(task_id))
        assert row is not None, "the task is not in the cache"
        return JsonBytesResponse(_row_json(row), headers={"ETag": f'"{row[ROW_INDEX["version"]]}"'})

    def urlconf(view: Callable[..., HttpResponse]) -> ModuleType:
        """The view at the service's path and depth: one include, the first route of each list."""
        module = ModuleType(f"bench.stages.{view.__name__}")
        module.urlpatterns = [path("api/v1/", include([path("tasks/<uuid:task_id>", view)]))]  # type: ignore[attr-defined]
        return module

    with override_settings(MIDDLEWARE=[]):
        bare = Application()
    served = Application()
    service = settings.ROOT_URLCONF
    environ = dict(base, PATH_INFO=f"/api/v1/tasks/{task_id}")
    # name -> (handler, urlconf): each stage does what the one before did, and one thing more.
    stages: dict[str, tuple[Any, Any]] = {
        "django": (bare, urlconf(django_view)),
        "+ credential": (bare, urlconf(credential_view)),
        "+ cache read": (bare, urlconf(cache_view)),
        "+ DRF": (bare, service),
        "+ middleware": (served, service),
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        statuses.append(status)

    def timed(handler: Any) -> float:
        started = time.process_time()
        for _ in range(per_round):
            response = handler(dict(environ, **{"wsgi.input": io.BytesIO(b"")}), start_response)
            b"".join(response)
            response.close()
        return (time.process_time() - started) / per_round * 1e6

    # One Redis GET of the task's entry, three ways, on connections of their own.
    key_name = task_key(UUID(task_id))
    key = cache.make_key(key_name)
    client = redis.Redis.from_url(REDIS_URL)
    assert client.get(key) is not None, "the task is not in the cache"
    address = client.connection_pool.connection_kwargs
    raw = socket.create_connection((address["host"], address["port"]))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    command = f"*2\r\n$3\r\nGET\r\n${len(key)}\r\n{key}\r\n".encode()
    buffer = bytearray(65536)

    def raw_get() -> None:
        raw.sendall(command)
        raw.recv_into(buffer)

    reads: dict[str, Callable[[], object]] = {
        "redis-py client": lambda: client.get(key),
        "held connection (the cache's)": lambda: cache.get(key_name),
        "bare socket": raw_get,
    }

    def timed_read(read: Callable[[], object]) -> float:
        started = time.process_time()
        for _ in range(per_round):
            read()
        return (time.process_time() - started) / per_round * 1e6

    times: dict[str, list[float]] = {name: [] for name in [*stages, *reads]}
    for round_ in range(rounds + 1):  # the first round warms everything up, unmeasured
        for name, (handler, root) in stages.items():
            with override_settings(ROOT_URLCONF=root):
                measured = timed(handler)
            if round_:
                times[name].append(measured)
        for name, read in reads.items():
            measured = timed_read(read)
            if round_:
                times[name].append(measured)
    assert all(s.startswith("200") for s in statuses), {s for s in statuses if not s.startswith("200")}
    medians = {name: statistics.median(measured) for name, measured in times.items()}
    whole = medians["+ middleware"]
    print(f"CPU time per request, median of {rounds} rounds of {per_round} (process_time: user + system)")
    print(f"{'stage':32} {'total':>8} {'adds':>8} {'of the whole':>12}")
    before = 0.0
    for name in stages:
        adds = medians[name] - before
        print(f"{name:32} {medians[name]:6.1f}µs {adds:+6.1f}µs {adds / whole:12.0%}")
        before = medians[name]
    print("one Redis GET of the task's entry (for scale)")
    for name in reads:
        print(f"{name:32} {medians[name]:6.1f}µs")


if __name__ == "__main__":
    main()
