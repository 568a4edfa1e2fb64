"""Database: SQLite file by default, PostgreSQL when DATABASE_URL is set."""

from config.env import BASE_DIR, env, integer, seconds
from config.settings.components.observability import METRICS_ENABLED

(BASE_DIR / "var").mkdir(exist_ok=True)  # the SQLite files and collected static files

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}

# The request time budget (docs/architecture.md, "Timeouts and retries"): PostgreSQL cancels any
# statement that runs longer.
DATABASE_STATEMENT_TIMEOUT_MS = integer("DATABASE_STATEMENT_TIMEOUT_MS", 5000, minimum=0)

_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections save ~0.5 ms a request; health checks recover connections the server dropped.
    _db["CONN_MAX_AGE"] = integer("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})["options"] = f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
    # libpq waits forever for a host that does not answer; readiness checks and requests must not.
    _db["OPTIONS"].setdefault("connect_timeout", integer("DATABASE_CONNECT_TIMEOUT", 5, minimum=1))
else:
    _db.setdefault("OPTIONS", {}).update(
        {
            # Wait for a writer instead of failing at once with "database is locked".
            "timeout": 5,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not memory, so that tests with threads share one database.
    _db["TEST"] = {"NAME": str(BASE_DIR / "var" / "test.sqlite3")}

# django-prometheus' subclasses of Django's backends count connections, statements, errors and
# query durations (django_db_* metrics).
if METRICS_ENABLED:
    _db["ENGINE"] = _db["ENGINE"].replace("django.db.backends.", "django_prometheus.db.backends.")

# Lets parallel test runs on one machine keep apart (the default is Django's "test_<NAME>").
if _test_name := env.str("DATABASE_TEST_NAME", default=""):
    _db.setdefault("TEST", {})["NAME"] = _test_name

# Write services retry transient database errors (deadlock, serialization failure, dropped connection)
# for up to this many seconds after the first try. A fast PostgreSQL restart refuses connections for
# ~0.2 s (docs/architecture.md, "Timeouts and retries"); 2 s rides out a slower one and still answers
# 503 well inside the statement timeout.
DATABASE_RETRY_WINDOW = seconds("DATABASE_RETRY_WINDOW", 2.0)
