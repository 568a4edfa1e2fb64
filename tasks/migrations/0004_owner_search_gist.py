"""PostgreSQL-only: an owner-leading trigram GiST index over title and description, for the search of
one owner's list.

The GIN indexes of 0003 find an owner's matches by intersecting the owner's rows with the rows of
every trigram of the word, and those trigram lists grow with the whole table: at 1M tasks a search
for a word in one task of 40 decoded some 190,000 row pointers to find the owner's 15 matches
(1.4 ms on the server, 140 index pages, against 0.03 ms at 10k tasks). A GiST index keeps each row's
trigrams beside its owner id, sorted by owner (btree_gist gives integers a GiST operator class), so
the search reads the owner's own entries only: 0.3 ms and 31 pages at 1M. The filter
(tasks/filters.py, `SearchText`) searches `UPPER(title || U+001F || description)`, one expression
for both columns; `siglen=256` makes the inner pages' trigram signatures skip pages of the owner
without the word. Lists of every owner (managers) keep the GIN indexes of 0003: without an owner
condition this index would be read whole.

Built with CREATE INDEX CONCURRENTLY (about a minute at 1M tasks), so writes go on meanwhile; that
cannot run in a transaction, hence atomic = False. A build that failed leaves an invalid index
behind, which is dropped and built again. SQLite gets none of this.
"""

from django.db import migrations

from tasks.migrations._concurrently import build_index, drop_index

NAME = "task_owner_search_gist"
DEFINITION = "gist (owner_id, (UPPER((title::text || CHR(31) || description))) gist_trgm_ops(siglen=256))"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    build_index(schema_editor, NAME, DEFINITION)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    drop_index(schema_editor, NAME)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tasks", "0003_owner_gin_indexes")]
    operations = [migrations.RunPython(forward, backward)]
