"""Index builds of the PostgreSQL-only migrations (0003 onwards) that do not lock the task table.

Not a migration: Django's loader skips the modules of this package whose name starts with "_".
CREATE INDEX CONCURRENTLY lets writes go on while the index builds, and cannot run in a transaction
(the migrations that call it set `atomic = False`). A build that failed leaves an invalid index
behind, which `build_index` drops and builds again.
"""


def build_index(schema_editor, name, definition):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    if row is not None and not row[0]:
        drop_index(schema_editor, name)
    schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tasks_task USING {definition}")


def drop_index(schema_editor, name):
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
