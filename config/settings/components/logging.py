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
        "text": {"()": "observability.logging.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",  # log lines on stdout (StreamHandler's default is stderr)
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's default logging gives "django" a handler of its own (stderr, unformatted, with
        # DJANGO_DEBUG): every django.* record would be printed twice. Ours, through the root, only.
        "django": {"handlers": [], "propagate": True},
        # Request lines come from our own middleware; Django's own would repeat them: runserver's, and
        # django.request's warning per 4xx (written after the middleware, so without the request id).
        # Its 5xx errors, with their tracebacks, are written inside the request and stay.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
