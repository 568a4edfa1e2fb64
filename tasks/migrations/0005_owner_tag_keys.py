"""PostgreSQL-only: a GIN index whose keys are the owner and the tag together, for the tag filter of
one owner's list.

The owner-leading GIN of 0003, `(owner_id, tags jsonb_path_ops)`, keeps the owner ids and the tags as
separate keys, and finds "my tasks tagged finance" by intersecting the owner's posting list with the
tag's, which holds every owner's finance tasks: it grows with the whole table. At 1M tasks (9% of
them tagged finance) that scan read 39 index pages in 0.53 ms to find the owner's 67 tasks
(bench/README.md, 2026-12-05 16:58 UTC). Here each row's key is `{"<owner id>": <tags>}`
(`tasks_owner_tags`), whose jsonb_path_ops entries hash the owner and each tag together: the filter
(tasks/filters.py, `OwnerTags`) asks for `{"<owner id>": ["finance"]}` and reads only the owner's
finance tasks (8 pages in 0.03 ms at 1M). The index also leads with `owner_id`, which the list's own
`owner_id = <id>` matches: without it, the planner, which takes the two conditions for independent,
ANDed the key's few rows with every row of the owner from another index. Lists of every owner
(managers) keep the index of 0003, whose `tags` column serves a tag condition alone.

`tasks_owner_tags` is declared IMMUTABLE, which an index expression requires: `jsonb_build_object`
is only STABLE because it accepts any type, and for a bigint and a jsonb its result never changes.

The index is built with CREATE INDEX CONCURRENTLY (about a minute at 1M tasks), so writes go on
meanwhile; that cannot run in a transaction, hence atomic = False. A build that failed leaves an
invalid index behind, which is dropped and built again. SQLite gets none of this.
"""

from django.db import migrations

from tasks.migrations._concurrently import build_index, drop_index

FUNCTION = (
    "CREATE OR REPLACE FUNCTION tasks_owner_tags(owner_id bigint, tags jsonb) RETURNS jsonb"
    " LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT jsonb_build_object(owner_id::text, tags) $$"
)
NAME = "task_owner_tag_keys_gin"
DEFINITION = "gin (owner_id, tasks_owner_tags(owner_id, tags) jsonb_path_ops)"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION)
    build_index(schema_editor, NAME, DEFINITION)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    drop_index(schema_editor, NAME)
    schema_editor.execute("DROP FUNCTION IF EXISTS tasks_owner_tags(bigint, jsonb)")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tasks", "0004_owner_search_gist")]
    operations = [migrations.RunPython(forward, backward)]
