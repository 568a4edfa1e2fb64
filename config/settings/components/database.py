"""Database: SQLite file by default, PostgreSQL when DATABASE_URL is set."""

from config.env import BASE_DIR, INT32_MAX, env, integer, seconds
from config.settings.components.observability import METRICS_ENABLED

(BASE_DIR / "var").mkdir(exist_ok=True)  # the SQLite files and collected static files

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}

# The request time budget (docs/architecture.md, "Timeouts and retries"): PostgreSQL cancels any
# statement that runs longer.
# 0: no limit (PostgreSQL's own meaning).
DATABASE_STATEMENT_TIMEOUT_MS = integer("DATABASE_STATEMENT_TIMEOUT_MS", 5000, minimum=0, maximum=INT32_MAX)
# PostgreSQL only, read (and checked) whatever the database. The connect timeout is at most an hour:
# it is also the keepalives' idle time, which Linux takes up to 32,767 s.
_conn_max_age = integer("DATABASE_CONN_MAX_AGE", 60, minimum=0)
DATABASE_CONNECT_TIMEOUT = integer("DATABASE_CONNECT_TIMEOUT", 5, minimum=1, maximum=3600)

_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend (django-prometheus' with metrics), but while the server does not answer
    # connection attempts, a process waits on one at a time, and a wait for its answer that outlasts
    # the statement and connect timeouts is ended (core/postgresql/base.py).
    _db["ENGINE"] = "core.postgresql"
    # `.iterator()` on a client-side cursor, which the watchdog watches (and which a transaction-mode
    # pooler such as PgBouncer needs anyway).
    _db["DISABLE_SERVER_SIDE_CURSORS"] = True
    # Persistent connections save ~0.5 ms a request; health checks recover connections the server dropped.
    _db["CONN_MAX_AGE"] = _conn_max_age
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})["options"] = f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
    # libpq waits forever for a host that does not answer; readiness checks and requests must not.
    _db["OPTIONS"].setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
    # Nor once connected: a host the network lost (a partition, a host gone) would hold a request's
    # thread until TCP gives up, ~15 minutes with a query unacknowledged, for ever while waiting for
    # its answer. A query unacknowledged for DATABASE_CONNECT_TIMEOUT seconds drops the connection, and
    # so do keepalive probes unanswered after that long without traffic; the request is "unavailable".
    for _option, _value in {
        "tcp_user_timeout": DATABASE_CONNECT_TIMEOUT * 1000,
        "keepalives": 1,
        "keepalives_idle": DATABASE_CONNECT_TIMEOUT,
        # Linux ends the wait by tcp_user_timeout at the first probe unanswered that late; elsewhere, by
        # the count (so the idle time and three seconds).
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }.items():
        _db["OPTIONS"].setdefault(_option, _value)
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
# query durations (django_db_* metrics); core.postgresql subclasses the right one itself.
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
