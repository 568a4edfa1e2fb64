"""Logging to stdout: readable lines in development, JSON lines otherwise. Every record gets the
request id, the trace and span ids, and credentials scrubbed (observability.logging)."""

from config.env import DEBUG, env

LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "observability.logging.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "observability.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",  # DESIGN §6: log lines on stdout (StreamHandler's default is stderr)
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Request lines come from our own middleware; Django's own would repeat them.
        "django.server": {"level": "WARNING"},
    },
}
