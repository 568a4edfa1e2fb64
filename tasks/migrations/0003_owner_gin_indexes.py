"""PostgreSQL-only: owner-leading GIN indexes for the tag filter and the search of one owner's list.

At 1M tasks the GIN indexes of 0002 cover the whole table: "my tasks tagged finance" read the
posting list of every finance task (93k rows, 25 ms) and intersected it with the owner's rows, and a
search read every matching row of every owner (45 ms). With the owner id as the first column of the
GIN (btree_gin gives integers a GIN operator class), one index scan finds the owner's matching rows
only (0.8 ms and 3.8 ms; bench/scale.py, docs/architecture.md "Indexes"). They replace the indexes of
0002: a multicolumn GIN index serves a condition on any of its columns alone as well as the
single-column index would, so managers' lists, which span every owner, use the same ones.

Built with CREATE INDEX CONCURRENTLY, so a deploy does not block writes to the task table while
they build (about two minutes at 1M tasks); that cannot run in a transaction, hence atomic = False.
A build that failed leaves an invalid index behind, which is dropped and built again. The indexes
of 0002 are dropped only once the new ones are built. SQLite gets none of this.
"""

from django.db import migrations

from tasks.migrations._concurrently import build_index, drop_index

INDEXES = {
    "task_owner_tags_gin": "gin (owner_id, tags jsonb_path_ops)",
    "task_owner_title_trgm": "gin (owner_id, (UPPER(title::text)) gin_trgm_ops)",
    "task_owner_description_trgm": "gin (owner_id, (UPPER(description::text)) gin_trgm_ops)",
}
REPLACED = {
    "task_tags_gin": "gin (tags jsonb_path_ops)",
    "task_title_trgm": "gin ((UPPER(title::text)) gin_trgm_ops)",
    "task_description_trgm": "gin ((UPPER(description::text)) gin_trgm_ops)",
}


def _build(schema_editor, indexes):
    for name, definition in indexes.items():
        build_index(schema_editor, name, definition)


def _drop(schema_editor, indexes):
    for name in indexes:
        drop_index(schema_editor, name)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    _build(schema_editor, INDEXES)
    _drop(schema_editor, REPLACED)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    _build(schema_editor, REPLACED)
    _drop(schema_editor, INDEXES)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tasks", "0002_postgresql_indexes")]
    operations = [migrations.RunPython(forward, backward)]
