"""Wait for the database, or for every migration to be applied, before a role starts (docker/entrypoint.sh).

    python docker/wait.py database          # until a connection opens
    python docker/wait.py migrations        # until the migration plan is empty
    python docker/wait.py migrate [ARGS]    # until a connection opens, then manage.py migrate --no-input ARGS

Gives up after WAIT_TIMEOUT seconds (60) with exit status 1, so the container fails visibly instead of
serving errors. `migrate` tries again (3 tries) when the connection fails under it: on a network that is
still being set up, a name that resolved a moment ago failed once (container DNS, before the cluster's
services had PostgreSQL in /etc/hosts; a connection can still fail while PostgreSQL starts).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import django


def database_ready() -> bool:
    from django.db import connection
    from django.db.utils import DatabaseError

    try:
        connection.ensure_connection()
    except DatabaseError:
        connection.close()
        return False
    return True


def migrations_applied() -> bool:
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor
    from django.db.utils import DatabaseError

    connection = connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        return not executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        connection.close()
        return False


def migrate(args: list[str], tries: int = 3) -> int:
    from django.core.management import call_command
    from django.db import connection
    from django.db.utils import OperationalError

    for attempt in range(1, tries + 1):
        try:
            call_command("migrate", *args, interactive=False)
        except OperationalError as error:
            if attempt == tries:
                raise
            print(f"wait.py: migrate failed ({error}); trying again", file=sys.stderr)
            connection.close()
            time.sleep(2)
            if not wait_for(database_ready, "database"):
                return 1
        else:
            return 0
    return 1


def wait_for(check: Callable[[], bool], what: str) -> bool:
    timeout = float(os.environ.get("WAIT_TIMEOUT", "60"))
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            print(f"wait.py: no {what} after {timeout:g} s", file=sys.stderr)
            return False
        time.sleep(1)
    return True


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else "database"
    checks = {"database": database_ready, "migrations": migrations_applied, "migrate": database_ready}
    if what not in checks:
        print(f"usage: wait.py {'|'.join(checks)}", file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    django.setup()
    if not wait_for(checks[what], what):
        return 1
    if what == "migrate":
        return migrate(sys.argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
