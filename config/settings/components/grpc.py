"""gRPC server (`manage.py grpcserver`)."""

from config.env import INT32_MAX, env, integer, seconds
from config.settings.components.http import REQUEST_MAX_BYTES

GRPC_ENABLED = env.bool("GRPC_ENABLED", default=True)
GRPC_HOST = env.str("GRPC_HOST", default="127.0.0.1")
GRPC_PORT = integer("GRPC_PORT", 50051, minimum=1, maximum=65535)
# Threads running unary calls (and health checks), however many are in progress: each keeps its
# own database connection. Sync handlers on a thread pool: measured faster than grpc.aio (docs/api/grpc.md).
GRPC_WORKERS = integer("GRPC_WORKERS", 8, minimum=1)
# Calls in progress at once; more are refused with RESOURCE_EXHAUSTED instead of queueing without bound.
GRPC_MAX_CONCURRENT_RPCS = integer("GRPC_MAX_CONCURRENT_RPCS", 64, minimum=1)
# Streams (WatchTasks, SyncTasks) open at once. Each holds a thread while open, on a pool of their own
# (this many threads, and one to refuse the streams over it), and this many calls more than
# GRPC_MAX_CONCURRENT_RPCS are allowed: streams and unary calls never take each other's threads.
# More streams get RESOURCE_EXHAUSTED.
GRPC_MAX_STREAMS = integer("GRPC_MAX_STREAMS", 100, minimum=1)
GRPC_MAX_RECEIVE_MESSAGE_BYTES = integer(
    "GRPC_MAX_RECEIVE_MESSAGE_BYTES", REQUEST_MAX_BYTES, minimum=1, maximum=INT32_MAX
)
# At least the largest valid task (~45 KB) and a page token: a reply of one task must fit.
GRPC_MAX_SEND_MESSAGE_BYTES = integer(
    "GRPC_MAX_SEND_MESSAGE_BYTES", 4 * 1024 * 1024, minimum=64 * 1024, maximum=INT32_MAX
)
GRPC_REFLECTION_ENABLED = env.bool("GRPC_REFLECTION_ENABLED", default=True)
GRPC_HEALTH_ENABLED = env.bool("GRPC_HEALTH_ENABLED", default=True)
# Seconds between database checks of the health service, and the grace period of a shutdown.
GRPC_HEALTH_CHECK_INTERVAL = seconds("GRPC_HEALTH_CHECK_INTERVAL", 5.0, strict=True)
GRPC_SHUTDOWN_GRACE = seconds("GRPC_SHUTDOWN_GRACE", 10.0)
