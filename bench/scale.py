"""Lists and search at scale: the API's list queries over 10,000 and 1,000,000 tasks.

    .venv/bin/python bench/scale.py [--sizes 10000,1000000] [--repetitions 200] [--markdown] [--no-plans]
                                    [--database-url postgres://root@127.0.0.1:5432/taskhub_bench]

Steps: create the database `taskhub_scale` on the server of `--database-url` (the bench database is
not touched) with the extensions pg_trgm, btree_gin and btree_gist; for each size, a schema `scale_<size>` migrated
by Django's `migrate` (a child process whose connections use that schema), seeded with COPY (1,000
owners, tasks with statuses, priorities, tags, due dates and words to search), reused when its row
count already matches. Then one child process runs each query through `tasks.selectors.task_list`,
the selector every protocol calls (the page cache switched off, so every call reaches PostgreSQL), for
one typical owner of each size, the sizes interleaved repetition by repetition; it prints p50/p99 and
`EXPLAIN (ANALYZE, BUFFERS)` of the exact SQL each query ran. Targets: no query reads the task table
with a sequential scan, and each query's p99 at a larger size is at most 2x its p99 at the smallest.
See bench/README.md, "Lists and search at 1M tasks".
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if sys.path and Path(sys.path[0]).resolve() == BENCH_DIR:
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/taskhub_bench"
SCALE_DATABASE = "taskhub_scale"
DEFAULT_SIZES = (10_000, 1_000_000)
OWNERS = 1_000
TARGET_RATIO = 2.0  # p99 at a larger size over p99 at the smallest
SEED = 14
# The seed's "now": due dates and creation times are spread around it, so a seed means the same data
# whenever it was made and the due-date filter selects the same share of tasks.
SEED_NOW = datetime(2026, 12, 1, tzinfo=UTC)
COPY_CHUNK = 20_000

# Words of titles and descriptions, most common first: word i is drawn with weight 1 / (i + 8), so
# the first words are in many tasks and the last ones in few (a search must find both kinds).
_WORDS = """
review update fix check plan call send write prepare order meeting report team project client email
draft budget notes weekly monthly design test release deploy server backup database invoice payment
contract proposal slides agenda schedule follow document research analysis summary feedback sprint
ticket issue bug feature roadmap hiring interview onboarding training workshop conference travel flight
hotel booking dinner lunch birthday gift groceries pharmacy dentist doctor appointment insurance taxes
bank rent mortgage car repair garden kitchen bathroom painting cleaning laundry recycling library books
course exam homework lecture thesis paper article blog newsletter podcast video photo album camera
laptop phone printer network router firewall certificate password security audit compliance policy
migration upgrade monitoring alerting dashboard metrics logging tracing capacity latency throughput
cache queue worker scheduler pipeline container cluster kubernetes terraform ansible grafana postgres
redis kafka elastic nginx python django react typescript android iphone tablet keyboard monitor desk
chair office warehouse shipment delivery supplier vendor customer partner investor board quarterly
annual forecast revenue expenses receipts reimbursement payroll benefits vacation holiday volunteer
charity marathon gym yoga swimming cycling hiking camping fishing concert theater museum gallery
exhibition festival wedding anniversary reunion neighbour plumber electrician carpenter locksmith
gardener accountant lawyer notary architect surveyor translator photographer caterer florist
"""
WORDS = _WORDS.split()
_TAGS = """
work home urgent errand finance health family shopping admin followup waiting someday reading
learning travel car garden kids pets music sports writing research ops infra frontend backend mobile
security legal hr sales marketing support design meeting email phone weekly monthly quarterly yearly
"""
TAGS = _TAGS.split()

# The queries of one owner, as the API asks them: (name, filters, which page). The owner and the
# positions come from the data; the filter values are fixed so every size answers the same question.
# Two searches: a word in about one task in 40 (the typical owner has 15 matches at 1M, less than a
# page, so every row of the owner must be searched) and the most common word (a page is found among
# the owner's newest tasks).
SEARCH_WORD = "florist"
COMMON_WORD = "review"
QUERIES: tuple[tuple[str, dict[str, str], str], ...] = (
    ("first page", {}, "first"),
    ("deep page", {}, "deep"),
    ("status", {"status": "in_progress"}, "first"),
    ("tag", {"tag": "finance"}, "first"),
    (
        "due date",
        {
            "due_after": (SEED_NOW + timedelta(days=7)).isoformat(),
            "due_before": (SEED_NOW + timedelta(days=21)).isoformat(),
        },
        "first",
    ),
    ("search", {"search": SEARCH_WORD}, "first"),
    ("search, common word", {"search": COMMON_WORD}, "first"),
)
DEEP_SHARE = 0.9  # the deep page starts after this share of the owner's tasks (page ~45 of ~50 at 1M)
# The queries of QUERIES in another ordering than the default, or of a manager (every owner's tasks):
# name → (ordering, manager, where the deep page starts: after this share of the list). A deep page in
# a due-date ordering starts halfway, among the dated tasks (the 30% without a due date come last,
# and "after a dated task" must not read them all); in `priority` inside a run of one priority (the
# seed has three); a manager's at DEEP_SHARE of every task.
ORDERED_QUERIES: dict[str, tuple[str, bool, float]] = {
    "deep page, due date order": ("due_date", False, 0.5),
    "deep page, -due date order": ("-due_date", False, 0.5),
    "deep page, priority order": ("priority", False, DEEP_SHARE),
    "manager: first page, due date order": ("due_date", True, DEEP_SHARE),
    "manager: deep page, -priority order": ("-priority", True, DEEP_SHARE),
}
QUERIES += tuple(
    (name, {}, "deep" if name.startswith(("deep", "manager: deep")) else "first") for name in ORDERED_QUERIES
)


def log(message: str) -> None:
    print(f"[scale {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class ScaleError(Exception):
    """The bench could not run (PostgreSQL missing, migrate failed)."""


# -- database, schemas and seed -----------------------------------------------------------------------


def scale_url(database_url: str) -> str:
    """The URL of the scale database on the server of `database_url`."""
    parts = urlsplit(database_url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ScaleError(f"the scale bench needs PostgreSQL, not {parts.scheme}")
    return parts._replace(scheme="postgresql", path=f"/{SCALE_DATABASE}").geturl()


def schema_of(size: int) -> str:
    return f"scale_{int(size)}"


def ensure_database(database_url: str) -> None:
    import psycopg

    maintenance = urlsplit(scale_url(database_url))._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [SCALE_DATABASE]).fetchone() is None:
                log(f"creating database {SCALE_DATABASE}")
                conn.execute(f"CREATE DATABASE {SCALE_DATABASE}")
        with psycopg.connect(scale_url(database_url), autocommit=True) as conn:
            # In `public`, which every schema's search_path ends with: the migrations' CREATE EXTENSION
            # IF NOT EXISTS then finds them, and their operator classes resolve from any schema.
            for extension in ("pg_trgm", "btree_gin", "btree_gist"):
                conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA public")
    except psycopg.OperationalError as exc:
        raise ScaleError(f"PostgreSQL is not reachable at {maintenance}: {exc}") from exc


def child_environment(database_url: str) -> dict[str, str]:
    """Django's settings for the child processes: the test settings (no secrets needed) on the scale
    database, with the page cache off so that every list call runs its query."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=scale_url(database_url).replace("postgresql://", "postgres://", 1),
        DATABASE_STATEMENT_TIMEOUT_MS="0",
        DATABASE_CONN_MAX_AGE="0",
        CACHE_ENABLED="false",
        REDIS_URL="",
        METRICS_ENABLED="false",
        TRACING_ENABLED="false",
        EVENTS_ENABLED="false",
        PYTHONPATH=str(ROOT),
    )
    return env


def run_child(database_url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=child_environment(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ScaleError(f"child {args[0]} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def seeded_count(conn: Any, schema: str) -> int | None:
    """Tasks and owners in the schema's tables, or None when the schema has no migrated task table."""
    exists = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'tasks_task'", [schema]
    ).fetchone()
    if exists is None:
        return None
    tasks = conn.execute(f'SELECT count(*) FROM "{schema}".tasks_task').fetchone()[0]
    owners = conn.execute(f'SELECT count(*) FROM "{schema}".auth_user').fetchone()[0]
    return int(tasks) if owners == OWNERS else -1


def _owner_rows() -> Iterator[str]:
    joined = SEED_NOW - timedelta(days=1000)
    for n in range(1, OWNERS + 1):
        yield f"{n}\t!\t\\N\tf\towner{n:04d}\t\t\t\tf\tt\t{joined.isoformat()}\n"


def _task_rows(size: int) -> Iterator[str]:
    """Tab-separated COPY rows of `size` tasks over OWNERS owners (deterministic for a size)."""
    rng = random.Random(SEED)
    word_weights = [1 / (i + 8) for i in range(len(WORDS))]
    tag_weights = [1 / (i + 4) for i in range(len(TAGS))]
    span = 730 * 86400  # created over the two years before SEED_NOW
    statuses = ("todo", "in_progress", "completed")
    for _ in range(size):
        owner = rng.randint(1, OWNERS)
        created = SEED_NOW - timedelta(seconds=rng.random() * span)
        updated = created + timedelta(seconds=rng.random() * 86400)
        status = rng.choices(statuses, weights=(5, 2, 3))[0]
        completed = status == "completed"
        completed_at = updated.isoformat() if completed else "\\N"
        due = "\\N" if rng.random() < 0.3 else (SEED_NOW + timedelta(days=rng.uniform(-180, 365))).isoformat()
        title = " ".join(rng.choices(WORDS, weights=word_weights, k=rng.randint(2, 6))).capitalize()
        description = (
            ""
            if rng.random() < 0.2
            else " ".join(rng.choices(WORDS, weights=word_weights, k=rng.randint(5, 30))).capitalize() + "."
        )
        tags = json.dumps(sorted(set(rng.choices(TAGS, weights=tag_weights, k=rng.randint(0, 4)))))
        yield (
            f"{uuid.UUID(int=rng.getrandbits(128), version=4)}\t{owner}\t{title}\t{description}\t{rng.randint(1, 3)}"
            f"\t{status}\t{'t' if completed else 'f'}\t{due}\t{tags}\t{created.isoformat()}\t{updated.isoformat()}"
            f"\t{completed_at}\t{rng.randint(1, 5)}\n"
        )


def _copy(conn: Any, statement: str, rows: Iterator[str]) -> None:
    with conn.cursor().copy(statement) as copy:
        buffer = io.StringIO()
        for n, row in enumerate(rows, 1):
            buffer.write(row)
            if n % COPY_CHUNK == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def seed(database_url: str, size: int) -> float | None:
    """Migrate and fill the schema of `size`, unless it already holds `size` tasks.

    Returns the seconds the seed took, or None when the existing one was reused. The task table's
    indexes (all but the primary key) are dropped during COPY and built after, as a bulk load should.
    """
    import psycopg

    schema = schema_of(size)
    with psycopg.connect(scale_url(database_url), autocommit=True) as conn:
        if seeded_count(conn, schema) == size:
            log(f"{schema}: reusing the seed of {size:,} tasks; migrating it")
            run_child(database_url, "--_migrate", schema)  # a newer migration (an index) applies to the seed
            conn.execute(f'ANALYZE "{schema}".tasks_task')
            return None
        started = time.perf_counter()
        log(f"{schema}: seeding {size:,} tasks")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
        run_child(database_url, "--_migrate", schema)
        conn.execute(f'SET search_path TO "{schema}", public')
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = %s AND i.tablename = 'tasks_task'"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [schema],
        ).fetchall()
        with conn.transaction():
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{schema}"."{name}"')
            _copy(
                conn,
                "COPY auth_user (id, password, last_login, is_superuser, username, first_name, last_name,"
                " email, is_staff, is_active, date_joined) FROM STDIN",
                _owner_rows(),
            )
            conn.execute(f"SELECT setval(pg_get_serial_sequence('auth_user', 'id'), {OWNERS})")
            _copy(
                conn,
                "COPY tasks_task (id, owner_id, title, description, priority, status, completed, due_date, tags,"
                " created_at, updated_at, completed_at, version) FROM STDIN",
                _task_rows(size),
            )
        # After the commit: the deferred foreign-key checks of the COPY must have run before CREATE INDEX.
        log(f"{schema}: copied in {time.perf_counter() - started:.0f} s; building {len(indexes)} indexes")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM (ANALYZE) tasks_task")
        conn.execute("VACUUM (ANALYZE) auth_user")
        seconds = time.perf_counter() - started
        log(f"{schema}: seeded in {seconds:.0f} s")
        return seconds


# -- the child processes (Django) -------------------------------------------------------------------


def _django(schema: str | None) -> None:
    """Set Django up with every connection's search_path on `schema` (then `public`, the extensions')."""
    import django
    from django.db.backends.signals import connection_created

    def use_schema(sender: Any, connection: Any, **kwargs: Any) -> None:
        if schema is not None:
            with connection.cursor() as cursor:
                cursor.execute(f'SET search_path TO "{schema}", public')

    connection_created.connect(use_schema, weak=False)
    django.setup()


def child_migrate(schema: str) -> None:
    _django(schema)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def child_measure(sizes: Sequence[int], repetitions: int, plans: bool) -> dict[str, Any]:
    """Time every query at every size, the sizes interleaved so that the machine's noise hits all alike."""
    _django(None)
    from django.db import connection
    from django.db.models import F
    from django.test.utils import CaptureQueriesContext

    from core.types import Actor, Role
    from tasks.models import Task
    from tasks.pagination import DEFAULT_ORDERING, cursor_after
    from tasks.selectors import task_list

    def use(size: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'SET search_path TO "{schema_of(size)}", public')

    setups: dict[int, dict[str, Any]] = {}
    for size in sizes:
        use(size)
        counts = sorted(_owner_counts(connection), key=lambda item: (item[1], item[0]))
        owner_id, owner_tasks = counts[len(counts) // 2]  # the median owner: a typical one
        actor = Actor(id=owner_id, username=f"owner{owner_id:04d}", roles=frozenset())
        manager = Actor(id=owner_id, username=f"owner{owner_id:04d}", roles=frozenset({Role.MANAGER}))
        deep: dict[tuple[str, bool], str] = {}
        for ordering, of_manager, share in [(DEFAULT_ORDERING, False, DEEP_SHARE), *ORDERED_QUERIES.values()]:
            field = ordering.lstrip("-")
            descending = ordering.startswith("-")
            # The order of tasks.pagination: the id breaks ties, a missing due date comes last.
            order = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
            tasks = Task.objects.all() if of_manager else Task.objects.filter(owner_id=owner_id)
            count = size if of_manager else owner_tasks
            edge = tasks.order_by(order, F("id").desc() if descending else F("id").asc())[
                max(0, int(count * share) - 1)
            ]
            deep[(ordering, of_manager)] = cursor_after(edge, ordering)
        setups[size] = {"actor": actor, "manager": manager, "owner_tasks": owner_tasks, "deep": deep}

    sql_seconds: list[float] = []

    def timed_sql(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds.append(time.perf_counter() - started)

    def call(size: int, name: str, filters: dict[str, str], page: str) -> int:
        setup = setups[size]
        ordering, of_manager, _ = ORDERED_QUERIES.get(name, (DEFAULT_ORDERING, False, DEEP_SHARE))
        cursor = setup["deep"][(ordering, of_manager)] if page == "deep" else None
        actor = setup["manager"] if of_manager else setup["actor"]
        return len(task_list(actor=actor, filters=dict(filters), ordering=ordering, cursor=cursor).items)

    timings: dict[tuple[int, str], list[float]] = {(size, name): [] for size in sizes for name, _, _ in QUERIES}
    sql_timings: dict[tuple[int, str], list[float]] = {key: [] for key in timings}
    rows: dict[tuple[int, str], int] = {}
    with connection.execute_wrapper(timed_sql):
        for round_number in range(repetitions + 5):  # five unmeasured rounds warm the caches
            for size in sizes:
                use(size)
                for name, filters, page in QUERIES:
                    sql_seconds.clear()
                    started = time.perf_counter()
                    rows[(size, name)] = call(size, name, filters, page)
                    elapsed = time.perf_counter() - started
                    if round_number >= 5:
                        timings[(size, name)].append(elapsed * 1000)
                        sql_timings[(size, name)].append(sum(sql_seconds) * 1000)

    explained: dict[tuple[int, str], str] = {}
    for size in sizes:
        use(size)
        for name, filters, page in QUERIES:
            with CaptureQueriesContext(connection) as captured:
                call(size, name, filters, page)
            sql = captured.captured_queries[-1]["sql"]
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                explained[(size, name)] = "\n".join(line for (line,) in cursor.fetchall())
    return {
        "owners": {str(size): [setups[size]["actor"].id, setups[size]["owner_tasks"]] for size in sizes},
        "results": [
            {
                "size": size,
                "query": name,
                "rows": rows[(size, name)],
                "p50": statistics.median(timings[(size, name)]),
                "p99": _quantile(timings[(size, name)], 0.99),
                "sql_p50": statistics.median(sql_timings[(size, name)]),
                "sql_p99": _quantile(sql_timings[(size, name)], 0.99),
                "plan": explained[(size, name)],  # always: the index check reads it
            }
            for size in sizes
            for name, _, _ in QUERIES
        ],
    }


def _owner_counts(connection: Any) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT owner_id, count(*) FROM tasks_task GROUP BY owner_id")
        return [(int(owner), int(count)) for owner, count in cursor.fetchall()]


# -- the report ------------------------------------------------------------------------------------


def execution_ms(plan: str) -> str:
    """The server's own time for the query, from EXPLAIN ANALYZE (one run, no network or client)."""
    found = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return f"{float(found.group(1)):.2f}" if found else "?"


def plan_verdict(plan: str) -> tuple[bool, list[str]]:
    """Whether the plan reads the task table only through indexes, and the indexes it uses."""
    indexes = sorted(
        set(re.findall(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)", plan))
    )
    return ("Seq Scan on tasks_task" not in plan and bool(indexes)), indexes


def render(
    measured: dict[str, Any], sizes: Sequence[int], markdown: bool, plans: bool, seeds: dict[int, float | None]
) -> tuple[str, bool]:
    base = min(sizes)
    by_key = {(r["size"], r["query"]): r for r in measured["results"]}
    headers = ["query"]
    for size in sizes:
        headers += [f"{size:,} p50 ms", f"{size:,} p99 ms", f"{size:,} SQL p50/p99", f"{size:,} EXPLAIN ms"]
        headers += [f"{size:,} rows"]
    headers += [f"indexes at {max(sizes):,}", "p99 ratio", "target"]
    table: list[list[str]] = []
    all_met = True
    for name, _, _ in QUERIES:
        line = [name]
        indexed = True
        used: list[str] = []
        for size in sizes:
            result = by_key[(size, name)]
            sql = f"{result['sql_p50']:.2f} / {result['sql_p99']:.2f}"
            line += [f"{result['p50']:.2f}", f"{result['p99']:.2f}", sql, execution_ms(result["plan"])]
            line += [str(result["rows"])]
            ok, indexes = plan_verdict(result["plan"])
            indexed &= ok
            used = indexes
        worst = max(by_key[(size, name)]["p99"] / by_key[(base, name)]["p99"] for size in sizes)
        met = indexed and worst <= TARGET_RATIO
        all_met &= met
        line += [", ".join(used) if indexed else "SEQ SCAN", f"{worst:.2f}x", "met" if met else "MISSED"]
        table.append(line)

    out = io.StringIO()
    owners = ", ".join(
        f"{int(size):,} tasks: owner {owner} with {count:,} tasks"
        for size, (owner, count) in measured["owners"].items()
    )
    out.write(f"Lists and search through tasks.selectors.task_list (page cache off), limit 20; {owners}\n")
    seeded = "; ".join(
        f"{size:,}: {'reused' if seconds is None else f'seeded in {seconds:.0f} s'}" for size, seconds in seeds.items()
    )
    out.write(
        f"Seeds: {seeded}. Target: no sequential scan of tasks_task, p99 <= {TARGET_RATIO:g}x the p99 at {base:,}.\n\n"
    )
    if markdown:
        out.write("| " + " | ".join(headers) + " |\n")
        out.write(
            "|" + "|".join("---" if i == 0 or i >= len(headers) - 3 else "---:" for i in range(len(headers))) + "|\n"
        )
        for line in table:
            out.write("| " + " | ".join(line) + " |\n")
    else:
        widths = [max(len(headers[i]), *(len(line[i]) for line in table)) for i in range(len(headers))]
        out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + "\n")
        for line in table:
            out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + "\n")
    out.write(f"\n{'All targets met.' if all_met else 'Some targets MISSED.'}\n")
    if plans:
        for size in sizes:
            for name, _, _ in QUERIES:
                plan = by_key[(size, name)]["plan"]
                fence = "```\n" if markdown else ""
                out.write(f"\nEXPLAIN (ANALYZE, BUFFERS) of {name!r} at {size:,} tasks:\n{fence}{plan}\n{fence}")
    return out.getvalue(), all_met


def run_scale(
    database_url: str,
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    markdown: bool = False,
    repetitions: int = 200,
    plans: bool = True,
) -> tuple[str, bool]:
    """Seed (or reuse) every size, measure every query and return (the report, whether all targets were met)."""
    sizes = sorted({int(size) for size in sizes})
    ensure_database(database_url)
    seeds = {size: seed(database_url, size) for size in sizes}
    log(f"measuring {len(QUERIES)} queries x {len(sizes)} sizes x {repetitions} repetitions")
    output = run_child(database_url, "--_measure", ",".join(map(str, sizes)), str(repetitions), "1" if plans else "0")
    return render(json.loads(output), sizes, markdown, plans, seeds)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_migrate"]:
        child_migrate(argv[1])
        return 0
    if argv[:1] == ["--_measure"]:
        sizes = [int(size) for size in argv[1].split(",")]
        print(json.dumps(child_measure(sizes, int(argv[2]), argv[3] == "1")))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated task counts")
    parser.add_argument("--repetitions", type=int, default=200, help="timed calls of each query at each size")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--no-plans", action="store_true", help="leave the EXPLAIN output out")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args(argv)
    try:
        text, met = run_scale(
            args.database_url,
            sizes=[int(size.replace("_", "")) for size in args.sizes.split(",")],
            markdown=args.markdown,
            repetitions=args.repetitions,
            plans=not args.no_plans,
        )
    except ScaleError as exc:
        log(f"error: {exc}")
        return 2
    print(text)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
