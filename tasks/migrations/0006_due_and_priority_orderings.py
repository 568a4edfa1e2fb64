"""PostgreSQL-only: indexes for the due-date orderings (of one owner and of everybody) and for the
priority orderings of everybody, so that each of their pages reads its own rows only.

Before these, at 1M tasks (`bench/scale.py`): a manager's list in a `due_date` or `priority`
ordering read the whole table in parallel and sorted it (~150 ms a page, against ~0.1 ms at the
default ordering, which `task_created_idx` serves); an owner's `-due_date` list sorted all the
owner's rows for every page, since `(owner_id, due_date, id)` read backwards gives the missing dates
first, not last; and a page after a position in either due-date ordering read every row of the
owner past it, because "after the position, or no due date" is no single range of that index.

`tasks.pagination` sorts a missing due date as `'infinity'` in the `due_date` ordering and as
`'-infinity'` in `-due_date` (both last, as before), and these indexes are built on exactly those
expressions: the rows after any position are one range, read from the cursor on. Each index serves
both directions of its ordering (a `previous` link reads it backwards). `task_owner_due_idx` stays
for the due-date filters, which compare the column itself.

Built with CREATE INDEX CONCURRENTLY (under a minute each at 1M tasks), so writes go on meanwhile;
that cannot run in a transaction, hence atomic = False. A build that failed leaves an invalid index
behind, which is dropped and built again. SQLite gets none of this.
"""

from django.db import migrations

from tasks.migrations._concurrently import build_index, drop_index

LAST = "(COALESCE(due_date, 'infinity'::timestamptz))"
FIRST = "(COALESCE(due_date, '-infinity'::timestamptz))"
INDEXES = {
    "task_owner_due_asc_idx": f"btree (owner_id, {LAST}, id)",
    "task_owner_due_desc_idx": f"btree (owner_id, {FIRST}, id)",
    "task_due_asc_idx": f"btree ({LAST}, id)",
    "task_due_desc_idx": f"btree ({FIRST}, id)",
    "task_priority_idx": "btree (priority, id)",
}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in INDEXES.items():
        build_index(schema_editor, name, definition)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        drop_index(schema_editor, name)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tasks", "0005_owner_tag_keys")]
    operations = [migrations.RunPython(forward, backward)]
