"""PostgreSQL-only indexes: GIN over tags (for `tags @> ...`) and trigram GIN for search.

The search filter is Django's `icontains`, which PostgreSQL runs as `UPPER(col::text) LIKE UPPER(%s)`;
the trigram indexes are on exactly those expressions so the planner can use them. SQLite gets none
of this (tags are matched with json_each and search is a LIKE scan).
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS task_tags_gin ON tasks_task USING gin (tags jsonb_path_ops)",
    "CREATE INDEX IF NOT EXISTS task_title_trgm ON tasks_task USING gin ((UPPER(title::text)) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS task_description_trgm ON tasks_task USING gin ((UPPER(description::text)) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS task_description_trgm",
    "DROP INDEX IF EXISTS task_title_trgm",
    "DROP INDEX IF EXISTS task_tags_gin",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("tasks", "0001_initial")]
    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
