"""gRPC server (`manage.py grpcserver`)."""

from config.env import env
from config.settings.components.http import REQUEST_MAX_BYTES

GRPC_ENABLED = env.bool("GRPC_ENABLED", default=True)
GRPC_HOST = env.str("GRPC_HOST", default="127.0.0.1")
GRPC_PORT = env.int("GRPC_PORT", default=50051)
# Threads running unary calls (and health checks), however many are in progress: each keeps its
# own database connection. Sync handlers on a thread pool: measured faster than grpc.aio (docs/api/grpc.md).
GRPC_WORKERS = env.int("GRPC_WORKERS", default=8)
# Calls in progress at once; more are refused with RESOURCE_EXHAUSTED instead of queueing without bound.
GRPC_MAX_CONCURRENT_RPCS = env.int("GRPC_MAX_CONCURRENT_RPCS", default=64)
# Streams (WatchTasks, SyncTasks) open at once. Each holds a thread while open, on a pool of their own
# (this many threads, and one to refuse the streams over it), and this many calls more than
# GRPC_MAX_CONCURRENT_RPCS are allowed: streams and unary calls never take each other's threads.
# More streams get RESOURCE_EXHAUSTED.
GRPC_MAX_STREAMS = env.int("GRPC_MAX_STREAMS", default=100)
GRPC_MAX_RECEIVE_MESSAGE_BYTES = env.int("GRPC_MAX_RECEIVE_MESSAGE_BYTES", default=REQUEST_MAX_BYTES)
GRPC_MAX_SEND_MESSAGE_BYTES = env.int("GRPC_MAX_SEND_MESSAGE_BYTES", default=4 * 1024 * 1024)
GRPC_REFLECTION_ENABLED = env.bool("GRPC_REFLECTION_ENABLED", default=True)
GRPC_HEALTH_ENABLED = env.bool("GRPC_HEALTH_ENABLED", default=True)
# Seconds between database checks of the health service, and the grace period of a shutdown.
GRPC_HEALTH_CHECK_INTERVAL = env.float("GRPC_HEALTH_CHECK_INTERVAL", default=5.0)
GRPC_SHUTDOWN_GRACE = env.float("GRPC_SHUTDOWN_GRACE", default=10.0)
