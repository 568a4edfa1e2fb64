"""Live task events (docs/events.md): one log of committed changes, streamed over every protocol."""

from config.env import env, integer, seconds

EVENTS_ENABLED = env.bool("EVENTS_ENABLED", default=True)
# The Redis Stream all processes append to and read from (with REDIS_URL; else an in-process log).
EVENTS_STREAM_KEY = env.str("EVENTS_STREAM_KEY", default="taskhub:events")
# Events the log keeps (approximately, on Redis: XADD MAXLEN ~). A client resuming from an older
# event id is told so (a `gap` event) and re-reads with a list.
EVENTS_RETENTION = integer("EVENTS_RETENTION", 10_000, minimum=1)
# Events waiting for one subscriber; a client that falls further behind is dropped (SLOW_CONSUMER).
EVENTS_BUFFER = integer("EVENTS_BUFFER", 256, minimum=1)
# Open streams per process, and per user in a process; more are refused (TOO_MANY_STREAMS).
EVENTS_MAX_STREAMS = integer("EVENTS_MAX_STREAMS", 1_000, minimum=1)
EVENTS_MAX_STREAMS_PER_USER = integer("EVENTS_MAX_STREAMS_PER_USER", 20, minimum=1)
# Seconds between keep-alive messages on an idle stream (SSE comment, websocket ping, gRPC nothing).
EVENTS_HEARTBEAT = seconds("EVENTS_HEARTBEAT", 15.0, strict=True)
# Seconds between re-checks of a stream's credential (a revoked API key ends its streams this late at most).
EVENTS_REAUTH_INTERVAL = seconds("EVENTS_REAUTH_INTERVAL", 30.0, strict=True)
