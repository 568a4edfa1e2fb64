"""Live task events (docs/events.md): one log of committed changes, streamed over every protocol."""

from config.env import env

EVENTS_ENABLED = env.bool("EVENTS_ENABLED", default=True)
# The Redis Stream all processes append to and read from (with REDIS_URL; else an in-process log).
EVENTS_STREAM_KEY = env.str("EVENTS_STREAM_KEY", default="taskhub:events")
# Events the log keeps (approximately, on Redis: XADD MAXLEN ~). A client resuming from an older
# event id is told so (a `gap` event) and re-reads with a list.
EVENTS_RETENTION = env.int("EVENTS_RETENTION", default=10_000)
# Events waiting for one subscriber; a client that falls further behind is dropped (SLOW_CONSUMER).
EVENTS_BUFFER = env.int("EVENTS_BUFFER", default=256)
# Open streams per process, and per user in a process; more are refused (TOO_MANY_STREAMS).
EVENTS_MAX_STREAMS = env.int("EVENTS_MAX_STREAMS", default=1_000)
EVENTS_MAX_STREAMS_PER_USER = env.int("EVENTS_MAX_STREAMS_PER_USER", default=20)
# Seconds between keep-alive messages on an idle stream (SSE comment, websocket ping, gRPC nothing).
EVENTS_HEARTBEAT = env.float("EVENTS_HEARTBEAT", default=15.0)
# Seconds between re-checks of a stream's credential (a revoked API key ends its streams this late at most).
EVENTS_REAUTH_INTERVAL = env.float("EVENTS_REAUTH_INTERVAL", default=30.0)
