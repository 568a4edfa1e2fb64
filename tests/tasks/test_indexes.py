"""PostgreSQL only: the queries `task_list` runs for one owner read that owner's rows through an index,
and a page deep in the cursor chain starts at its cursor in the index instead of reading every row
before it (docs/architecture.md, "Indexes"; bench/scale.py measures the same queries at 1M tasks)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from core.types import Actor
from tasks.models import Task
from tasks.pagination import DEFAULT_LIMIT, cursor_after
from tasks.selectors import task_list
from tests.tasks.helpers import expected_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

T0 = datetime(2030, 1, 1, tzinfo=UTC)
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
TAGS = ["home", "work", "errand", "finance", "health"]
# One task in 50 has the rare tag and word: a page of them is never among the owner's newest rows,
# so only an index that knows both the owner and the tag (or the words) finds them without reading
# the owner's other rows or the other owners' matches.
RARE_SHARE = 0.02
RARE_TAG = "taxes"
RARE_WORD = "kilowatt"
OWNERS = 30
OWNER_TASKS = 1_000
# Rows a page may read from the task table: the page, the one row that says whether there is a next
# page, and a few that share the cursor's timestamp or fail a filter. Reading every row of the owner
# (1,000) or of the table is what the indexes are there to prevent.
PAGE_BUDGET = 3 * (DEFAULT_LIMIT + 1)

# The owners take turns, so each owner's rows are spread over the whole table as in production
# (where rows of one owner are written over months between everybody else's), not packed in a few
# pages that the planner would rather read whole. setseed() makes the words and tags the same in
# every run.
_INSERT = """
WITH p AS (SELECT %(owners)s::int[] AS owners, %(words)s::text[] AS words, %(tags)s::text[] AS tags)
INSERT INTO tasks_task (id, owner_id, title, description, priority, status, completed, due_date, tags,
                        created_at, updated_at, completed_at, version)
SELECT gen_random_uuid(), p.owners[1 + g.n %% %(count)s], r.title,
       CASE WHEN r.rare THEN r.description || ' ' || %(rare_word)s ELSE r.description END, 2, r.status,
       r.status = 'completed', %(t0)s::timestamptz + r.due * interval '365 days',
       CASE WHEN r.rare THEN r.tags || jsonb_build_array(%(rare_tag)s::text) ELSE r.tags END,
       %(t0)s::timestamptz - g.n * interval '1 minute', %(t0)s::timestamptz,
       CASE WHEN r.status = 'completed' THEN %(t0)s::timestamptz END, 1
FROM p, generate_series(0, %(total)s - 1) AS g(n)
CROSS JOIN LATERAL (
    SELECT random() < %(rare_share)s AS rare, random() AS due,
           (ARRAY['todo', 'in_progress', 'completed'])[1 + floor(random() * 3)::int] AS status,
           concat_ws(' ', p.words[1 + floor(random() * 10)::int], p.words[1 + floor(random() * 10)::int], g.n) AS title,
           concat_ws(' ', p.words[1 + floor(random() * 10)::int], p.words[1 + floor(random() * 10)::int],
                     p.words[1 + floor(random() * 10)::int]) AS description,
           jsonb_build_array(p.tags[1 + floor(random() * 5)::int]) AS tags
) AS r
"""


@pytest.fixture
def owners(user: Any) -> list[Task]:
    """The user's 1,000 tasks, in the list's default order, among 30,000 tasks of 30 owners."""
    others = get_user_model().objects.bulk_create(
        get_user_model()(username=f"other-owner-{n}") for n in range(OWNERS - 1)
    )
    # Thirty thousand rows into eleven indexes outlast the 5 s statement timeout on a busy machine; the
    # setting is lifted with it, or the watchdog of waits for an answer would end the insert.
    with override_settings(DATABASE_STATEMENT_TIMEOUT_MS=0), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("SELECT setseed(0.14)")
        cursor.execute(
            _INSERT,
            {
                "owners": [user.pk, *(other.pk for other in others)],
                "count": OWNERS,
                "total": OWNERS * OWNER_TASKS,
                "t0": T0,
                "rare_share": RARE_SHARE,
                "rare_tag": RARE_TAG,
                "rare_word": RARE_WORD,
                "words": WORDS,
                "tags": TAGS,
            },
        )
        # Rows inserted into a GIN index wait in its pending list, which every scan reads whole, until
        # a vacuum or the list's size limit moves them into the index (autovacuum does it in
        # production): move them now, as a table written over months would have them.
        cursor.execute(
            "SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'tasks_task'::regclass AND a.amname = 'gin'"
        )
        cursor.execute("ANALYZE tasks_task")
    return list(Task.objects.filter(owner_id=user.pk).order_by("-created_at", "-id"))


def explain(actor: Actor, **kwargs: Any) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, FORMAT JSON) of the one query `task_list` runs for these arguments."""
    cache.clear()  # a cached page would run no query
    with CaptureQueriesContext(connection) as captured:
        task_list(actor=actor, **kwargs)
    [query] = captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query["sql"])
        document = cursor.fetchone()[0]
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def rows_read(plan: dict[str, Any]) -> int:
    """Rows the index and table scans of the plan produced or threw away."""
    scans = [node for node in nodes(plan) if node["Node Type"].endswith("Scan")]
    return sum(
        node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
        for node in scans
        if node["Node Type"] != "Bitmap Heap Scan"  # its rows are those its index scans found
    )


def index_names(plan: dict[str, Any]) -> set[str]:
    return {node["Index Name"] for node in nodes(plan) if "Index Name" in node}


@pytest.mark.parametrize("position", [DEFAULT_LIMIT, OWNER_TASKS // 2, OWNER_TASKS - DEFAULT_LIMIT - 5])
def test_a_page_deep_in_the_chain_starts_at_its_cursor(owners: list[Task], actor: Actor, position: int) -> None:
    cursor = cursor_after(owners[position - 1], "-created_at")
    page = task_list(actor=actor, cursor=cursor)
    assert [task.pk for task in page.items] == [task.pk for task in owners[position : position + DEFAULT_LIMIT]]
    plan = explain(actor, cursor=cursor)
    assert "task_owner_created_idx" in index_names(plan), plan
    assert rows_read(plan) <= PAGE_BUDGET, plan


def test_the_first_page_reads_one_page_of_rows(owners: list[Task], actor: Actor) -> None:
    plan = explain(actor)
    assert not any(node["Node Type"] == "Seq Scan" for node in nodes(plan)), plan
    assert rows_read(plan) <= PAGE_BUDGET, plan


def forget_some_due_dates() -> None:
    """About a third of the tasks lose their due date (those whose id starts with 0 to 4): the NULL
    group the due-date orderings put last, in both directions."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tasks_task SET due_date = NULL WHERE left(id::text, 1) < '5'")
        cursor.execute("ANALYZE tasks_task")


def positions(expected: list[Any], dated: int) -> list[int]:
    """Where the pages checked start: the first page, deep among the dated tasks, across the start of
    the NULL group, inside it, and the last full page."""
    wanted = [0, DEFAULT_LIMIT, dated // 2, dated - 5, dated + 5, len(expected) - DEFAULT_LIMIT - 5]
    return sorted({position for position in wanted if 0 <= position < len(expected)})


# The index of each ordering but the default (migration 0006 and the model's): an owner's, and
# everybody's (managers').
_INDEXES = {
    "due_date": ("task_owner_due_asc_idx", "task_due_asc_idx"),
    "-due_date": ("task_owner_due_desc_idx", "task_due_desc_idx"),
    "priority": ("task_owner_priority_idx", "task_priority_idx"),
    "-priority": ("task_owner_priority_idx", "task_priority_idx"),
}


@pytest.mark.parametrize("ordering", list(_INDEXES))
def test_an_owners_pages_start_at_their_cursor_in_every_ordering(
    owners: list[Task], actor: Actor, ordering: str
) -> None:
    """Each page of an owner's list, forward from its `next` cursor and back from its `previous` one,
    reads its own rows from the owner's index of its ordering, wherever it starts: among the dated
    tasks, across the start of the NULL group or inside it, deep in a run of one priority. Before
    migration 0006 and the owner-led row comparison of `tasks.pagination`, a due-date page after a
    position read every row of the owner past it (the NULL group was ORed to the range),
    `-due_date` sorted all the owner's rows for every page, and a priority page read the run of its
    priority before its cursor (every task of the fixture has the same)."""
    forget_some_due_dates()
    tasks = {task.pk: task for task in Task.objects.filter(owner_id=actor.id)}
    expected = expected_order(tasks.values(), ordering)
    dated = sum(1 for task in tasks.values() if task.due_date is not None)
    index = _INDEXES[ordering][0]

    def check(plan: dict[str, Any]) -> None:
        assert index_names(plan) == {index}, json.dumps(plan, indent=1)
        assert rows_read(plan) <= PAGE_BUDGET, json.dumps(plan, indent=1)

    for position in positions(expected, dated):
        cursor = None if position == 0 else cursor_after(tasks[expected[position - 1]], ordering)
        page = task_list(actor=actor, ordering=ordering, cursor=cursor)
        assert [task.pk for task in page.items] == expected[position : position + DEFAULT_LIMIT]
        check(explain(actor, ordering=ordering, cursor=cursor))
        if page.previous_cursor:
            before = task_list(actor=actor, ordering=ordering, cursor=page.previous_cursor)
            assert [task.pk for task in before.items] == expected[max(0, position - DEFAULT_LIMIT) : position]
            check(explain(actor, ordering=ordering, cursor=page.previous_cursor))


@pytest.mark.parametrize("shared", ["every task", "half the tasks"])
@pytest.mark.parametrize("ordering", ["due_date", "-due_date"])
def test_an_owners_due_date_pages_in_a_run_of_one_date_start_at_their_cursor(
    owners: list[Task], actor: Actor, ordering: str, shared: str
) -> None:
    """Many tasks due on one date (the end of a quarter, an import), none without one: a page after a
    cursor inside that run still reads its own rows from the owner's index. Compared as `(date, id)
    > (d, i)`, which the planner estimates as "date > d", no rows after the last date, it read the
    run of every owner through managers' index (the owner-led row of `tasks.pagination` prevents it;
    found in review)."""
    where = "" if shared == "every task" else "WHERE left(id::text, 1) < '8'"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE tasks_task SET due_date = '2031-03-31T00:00:00Z' {where}")
        cursor.execute("ANALYZE tasks_task")
    tasks = {task.pk: task for task in Task.objects.filter(owner_id=actor.id)}
    expected = expected_order(tasks.values(), ordering)
    for position in [DEFAULT_LIMIT, 300, 600, 900]:
        cursor = cursor_after(tasks[expected[position - 1]], ordering)
        page = task_list(actor=actor, ordering=ordering, cursor=cursor)
        assert [task.pk for task in page.items] == expected[position : position + DEFAULT_LIMIT]
        for plan in (explain(actor, ordering=ordering, cursor=cursor),
                     explain(actor, ordering=ordering, cursor=page.previous_cursor)):  # fmt: skip
            assert index_names(plan) == {_INDEXES[ordering][0]}, json.dumps(plan, indent=1)
            assert rows_read(plan) <= PAGE_BUDGET, json.dumps(plan, indent=1)


@pytest.mark.parametrize("ordering", list(_INDEXES))
def test_a_managers_list_reads_one_page_in_every_ordering(
    owners: list[Task], manager_actor: Actor, ordering: str
) -> None:
    """A list of every owner's tasks in a due-date or priority ordering reads its page from an index
    of migration 0006, at any depth. Before it, each page was a sequential scan of the whole table
    and a sort (~150 ms a page at 1M tasks, bench/scale.py)."""
    forget_some_due_dates()
    tasks = {task.pk: task for task in Task.objects.only("id", "due_date", "priority")}
    expected = expected_order(tasks.values(), ordering)
    dated = sum(1 for task in tasks.values() if task.due_date is not None)
    index = _INDEXES[ordering][1]
    for position in positions(expected, dated):
        cursor = None if position == 0 else cursor_after(tasks[expected[position - 1]], ordering)
        page = task_list(actor=manager_actor, ordering=ordering, cursor=cursor)
        assert [task.pk for task in page.items] == expected[position : position + DEFAULT_LIMIT]
        plan = explain(manager_actor, ordering=ordering, cursor=cursor)
        assert not any(node["Node Type"] == "Seq Scan" for node in nodes(plan)), json.dumps(plan, indent=1)
        assert index_names(plan) == {index}, json.dumps(plan, indent=1)
        assert rows_read(plan) <= PAGE_BUDGET, json.dumps(plan, indent=1)


@pytest.mark.parametrize("who", ["owner", "manager"])
@pytest.mark.parametrize(
    ("ordering", "filters"),
    [
        ("due_date", {"due_after": "2030-10-01T00:00:00Z"}),
        ("-due_date", {"due_before": "2030-04-01T00:00:00Z"}),
        ("due_date", {"due_after": "2030-06-01T00:00:00Z", "due_before": "2030-07-15T00:00:00Z"}),
    ],
    ids=["after, due_date", "before, -due_date", "both, due_date"],
)
def test_a_due_date_filter_bounds_the_due_date_orderings_index(
    owners: list[Task], actor: Actor, manager_actor: Actor, who: str, ordering: str, filters: dict[str, str]
) -> None:
    """A due-date filter in a due-date ordering sets its bound on the ordering's sort key as well
    (`TaskFilter.filter_due`): the page is one range of the index it is read from. On the column
    alone the filter was checked row by row along that index, and the tasks due late came after
    every earlier one: about half the owner's rows, half of the whole table for a manager (found in
    review). Its first page and the next read one page of rows, and hold what the filter keeps."""
    forget_some_due_dates()
    reader = actor if who == "owner" else manager_actor
    tasks = Task.objects.all() if who == "manager" else Task.objects.filter(owner_id=actor.id)
    if "due_after" in filters:
        tasks = tasks.filter(due_date__gt=filters["due_after"])
    if "due_before" in filters:
        tasks = tasks.filter(due_date__lt=filters["due_before"])
    expected = expected_order(tasks.only("id", "due_date"), ordering)
    assert len(expected) > 2 * DEFAULT_LIMIT, "the fixture has too few tasks in the range"
    first = task_list(actor=reader, ordering=ordering, filters=dict(filters))
    second = task_list(actor=reader, ordering=ordering, filters=dict(filters), cursor=first.next_cursor)
    assert [task.pk for task in [*first.items, *second.items]] == expected[: 2 * DEFAULT_LIMIT]
    # A closed range of a hundred tasks the planner may read whole (a bitmap) and sort, with the index
    # entries of the rows `forget_some_due_dates` updated (dead, not vacuumed yet): never the rows
    # before the range, as the filter on the column alone did.
    budget = 2 * max(PAGE_BUDGET, len(expected)) if len(filters) == 2 else PAGE_BUDGET
    for cursor in (None, first.next_cursor):
        plan = explain(reader, ordering=ordering, filters=dict(filters), cursor=cursor)
        assert rows_read(plan) <= budget, json.dumps(plan, indent=1)


@pytest.mark.parametrize(
    "filters",
    [
        {"status": "in_progress"},
        {"tag": "finance"},
        {"due_after": "2030-03-01T00:00:00Z", "due_before": "2030-03-15T00:00:00Z"},
        {"search": "charlie"},
    ],
    ids=["status", "tag", "due", "search"],
)
def test_filtered_lists_read_the_owner_through_an_index(
    owners: list[Task], actor: Actor, filters: dict[str, str]
) -> None:
    plan = explain(actor, filters=filters)
    assert not any(node["Node Type"] == "Seq Scan" for node in nodes(plan)), plan
    assert index_names(plan), plan
    # Never more than the owner's own rows: another owner's tasks are not read and thrown away.
    assert rows_read(plan) <= OWNER_TASKS, plan


def drop_indexes_but(*keep: str) -> None:
    """Drop, until the test's transaction rolls back, every index of the task table but the primary
    key and `keep`, and let the planner avoid a sequential scan wherever it can."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'tasks_task' AND schemaname = current_schema()"
            " AND indexname <> 'tasks_task_pkey' AND NOT indexname = ANY(%s)",
            [list(keep)],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL enable_seqscan = off")


@pytest.mark.parametrize("drop_others", [False, True], ids=["planner's choice", "only index"])
def test_an_owners_tag_filter_reads_the_owner_tag_keys(owners: list[Task], actor: Actor, drop_others: bool) -> None:
    """The GIN index of migration 0005 matches the SQL of an owner's tag filter (`OwnerTags`), and
    finds the owner's tasks with the tag from keys made of the owner and the tag together: a rare
    tag's page costs its matches, not the owner's 1,000 rows nor every owner's tasks with the tag
    (which the index of 0003 would intersect with the owner's). The planner picks it by itself."""
    filters = {"tag": RARE_TAG}
    expected = [task.pk for task in owners if RARE_TAG in task.tags][:DEFAULT_LIMIT]
    assert expected, "the fixture has no rare task of the owner"
    if drop_others:
        drop_indexes_but("task_owner_tag_keys_gin")
    assert [task.pk for task in task_list(actor=actor, filters=filters).items] == expected
    plan = explain(actor, filters=filters)
    assert index_names(plan) == {"task_owner_tag_keys_gin"}, json.dumps(plan, indent=1)
    assert rows_read(plan) <= PAGE_BUDGET, json.dumps(plan, indent=1)


def test_a_managers_tag_filter_reads_the_tags_gin_index(owners: list[Task], manager_actor: Actor) -> None:
    """A list of every owner has no owner to put in the key of migration 0005's index: its tag
    filter asks for the tag alone, which the GIN index of migration 0003 serves."""
    drop_indexes_but("task_owner_tags_gin", "task_owner_tag_keys_gin")
    expected = Task.objects.filter(tags__has_tag=RARE_TAG).order_by("-created_at", "-id")
    page = task_list(actor=manager_actor, filters={"tag": RARE_TAG})
    assert [task.pk for task in page.items] == [task.pk for task in expected[:DEFAULT_LIMIT]]
    plan = explain(manager_actor, filters={"tag": RARE_TAG})
    assert index_names(plan) == {"task_owner_tags_gin"}, json.dumps(plan, indent=1)


@pytest.mark.parametrize("drop_others", [False, True], ids=["planner's choice", "only index"])
def test_an_owners_search_reads_the_owner_search_gist(owners: list[Task], actor: Actor, drop_others: bool) -> None:
    """The GiST index of migration 0004 matches the SQL of an owner's search (`SearchText`), and
    finds the owner's matches among the owner's rows only: a rare word's page costs its matches,
    not the owner's 1,000 rows nor every owner's matches. The planner picks it by itself."""
    filters = {"search": RARE_WORD.upper()}
    expected = [task.pk for task in owners if RARE_WORD in task.description][:DEFAULT_LIMIT]
    assert expected, "the fixture has no rare task of the owner"
    if drop_others:
        drop_indexes_but("task_owner_search_gist")
    assert [task.pk for task in task_list(actor=actor, filters=filters).items] == expected
    plan = explain(actor, filters=filters)
    assert index_names(plan) == {"task_owner_search_gist"}, json.dumps(plan, indent=1)
    assert rows_read(plan) <= PAGE_BUDGET, json.dumps(plan, indent=1)


def test_a_managers_search_reads_the_gin_indexes(owners: list[Task], manager_actor: Actor) -> None:
    """A list of every owner has no owner condition to lead the GiST index with, and would read it
    whole: its search stays on the trigram GIN indexes of migration 0003, even when only they and the
    GiST index are there to choose from."""
    drop_indexes_but("task_owner_search_gist", "task_owner_title_trgm", "task_owner_description_trgm")
    expected = Task.objects.filter(description__contains=RARE_WORD).order_by("-created_at", "-id")
    page = task_list(actor=manager_actor, filters={"search": RARE_WORD})
    assert [task.pk for task in page.items] == [task.pk for task in expected[:DEFAULT_LIMIT]]
    plan = explain(manager_actor, filters={"search": RARE_WORD})
    assert "task_owner_search_gist" not in index_names(plan), json.dumps(plan, indent=1)
    assert {"task_owner_title_trgm", "task_owner_description_trgm"} <= index_names(plan), json.dumps(plan, indent=1)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("ALPHA", True),  # a title's word, any case
        ("kilowatt", True),  # a description's word
        ("e\x1fn", False),  # would span the join: the end of the title, the start of the description
        ("one\x1fneeds", False),  # the same with whole words
        ("%", False),  # LIKE's wildcards are text
    ],
)
def test_an_owners_search_is_a_substring_of_title_or_description(
    user: Any, actor: Actor, text: str, found: bool
) -> None:
    """The owner's search over `title || U+001F || description` finds exactly what a search of each
    column finds (docs/domain.md): no match across the join, not even for text holding U+001F."""
    Task.objects.create(owner=user, title="Alpha one", description="Needs a kilowatt meter")
    Task.objects.create(owner=user, title="Bravo", description="")
    page = task_list(actor=actor, filters={"search": text})
    per_column = Task.objects.filter(owner=user).filter(Q(title__icontains=text) | Q(description__icontains=text))
    assert [task.pk for task in page.items] == [task.pk for task in per_column.order_by("-created_at", "-id")]
    assert bool(page.items) is found
