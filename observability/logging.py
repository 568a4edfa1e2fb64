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
# key (`th_<prefix>_<secret>`), a `password=` / `token=` / `api_key=` pair (a quoted value whole, spaces
# and all). The application never logs one on purpose (tests/observability/test_logs.py); this is the
# net under that rule, for third-party messages, `extra=` values and exception texts.
_SECRETS = re.compile(
    r"(?P<bearer>\bBearer\s+)[^\s'\",]+"
    r"|\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"
    r"|\bth_[0-9a-f]{8,}_[\w-]+"
    r"|(?P<pair>(?:password|passwd|secret|token|api[_-]?key)[\"']?\s*[=:]\s*)"
    r"(?:(?P<quote>[\"'])(?:\\.|(?!(?P=quote)).)*(?P=quote)?|[^\s'\",&}]+)",
    re.IGNORECASE,
)


def _scrub(match: re.Match[str]) -> str:
    if match.group("pair") is not None:
        quote = match.group("quote") or ""
        return f"{match.group('pair')}{quote}[redacted]{quote}"
    return (match.group("bearer") or "") + "[redacted]"


# Each credential that _SECRETS finds contains one of these words, in some case. An ASCII text that
# holds none of them, lowercased, holds no credential: nearly every message and field (a path, a
# route, a method) is settled by these substring checks instead of trying the case-insensitive
# pattern at each of its characters (~0.4 µs instead of ~6 for a task's path). Any other text takes
# the pattern, whose Unicode case folding decides for non-ASCII text (the Kelvin sign is a k to it).
_SECRET_WORDS = ("bearer", "eyj", "th_", "passw", "secret", "token", "apikey", "api_key", "api-key")


def redact(text: str) -> str:
    """`text` with every credential in it replaced by `[redacted]`."""
    if text.isascii():
        lowered = text.lower()
        for word in _SECRET_WORDS:
            if word in lowered:
                break
        else:
            return text
    return redact_by_pattern(text)


def redact_by_pattern(text: str) -> str:
    """`redact` without its shortcut: the pattern tried on the whole text."""
    return _SECRETS.sub(_scrub, text)


def _clean(value: Any) -> Any:
    """An `extra=` value made safe to print: strings redacted, containers walked, and anything else
    (Django's `django.request` records carry the request, whose text includes its query string) by
    its text, redacted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    return redact(str(value))


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """What the record got from `extra=` (the access line's protocol, route, status, ...), scrubbed.
    `_clean`, its two common cases inline: every access line has half a dozen fields."""
    extras: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD:
            continue
        kind = type(value)
        if kind is str:
            extras[key] = redact(value)
        elif value is None or kind is int or kind is float:
            extras[key] = value
        else:
            extras[key] = _clean(value)
    return extras


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


# json.dumps(entry, default=str), with its encoder made once.
_JSON = json.JSONEncoder(default=str)


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
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return _JSON.encode(entry)


# The control characters of a text line's message, as escapes: one line is one record, whatever a
# client put in what the message quotes (a `%0A` in a URL's path, in the access line). The JSON
# format escapes them by itself. A traceback still follows on lines of its own.
_CONTROL_ESCAPES = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    **{ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"},
}


class TextFormatter(logging.Formatter):
    """Readable lines: `time level logger [request id] message`, then the record's context as
    key=value pairs — trace and span ids when tracing is on, and what an access line carries
    (protocol, method, path, route, status, duration_ms, user_id) — scrubbed like the JSON lines;
    tracebacks are scrubbed too."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.__dict__.setdefault("request_id", "-")
        record.message = record.message.translate(_CONTROL_ESCAPES)
        context = {
            key: value
            for key, value in (
                ("trace_id", getattr(record, "trace_id", None)),
                ("span_id", getattr(record, "span_id", None)),
            )
            if value is not None
        }
        context.update(_extras(record))
        pairs = " ".join(f"{key}={_text(value)}" for key, value in context.items())
        line = super().formatMessage(record)
        return f"{line} {pairs}" if pairs else line

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


def _text(value: Any) -> str:
    """A value as one token of a readable line: plain when it has no space, quote or control
    character, else JSON (which escapes them)."""
    if value is None:
        return "-"
    if isinstance(value, str) and value and not re.search(r"[\s\"'=\x00-\x1f\x7f-\x9f]", value):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, default=str)
