"""Log records for people and machines: the request id and trace ids on every record, credentials
scrubbed from every message, JSON lines in production and readable lines in development."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from observability.middleware import current_request_id
from observability.tracing import current_ids

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "trace_id", "span_id"}

# What a credential looks like wherever it might end up in a message: a bearer token, a JWT, an API
# key (`th_<prefix>_<secret>`), a `password=` / `token=` / `key=` pair. The application never logs
# one on purpose (tests/test_log_secrets.py); this is the net under that rule, for third-party
# messages and exception texts.
_SECRETS = re.compile(
    r"(?P<bearer>\bBearer\s+)[^\s'\",]+"
    r"|\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"
    r"|\bth_[0-9a-f]{8,}_[\w-]+"
    r"|(?P<pair>(?:password|passwd|secret|token|api[_-]?key)[\"']?\s*[=:]\s*[\"']?)[^\s'\",&}]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group("bearer") or m.group("pair") or "") + "[redacted]", text)


class RequestContextFilter(logging.Filter):
    """Adds `request_id`, `trace_id` and `span_id` to every record, and scrubs credentials from
    its message (the formatted message replaces msg/args when anything was scrubbed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        record.trace_id, record.span_id = current_ids()
        message = record.getMessage()
        scrubbed = redact(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)
