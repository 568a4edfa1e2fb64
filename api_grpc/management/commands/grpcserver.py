"""`manage.py grpcserver [--host H] [--port P] [--workers N]`: serve tasks.v1.TaskService.

Stops gracefully on SIGTERM or SIGINT: health turns NOT_SERVING, new calls get UNAVAILABLE, calls in
flight get GRPC_SHUTDOWN_GRACE seconds to finish, open streams end at once with UNAVAILABLE (reconnect
with the last event id).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from api_grpc.server import build_server
from core.startup import freeze_startup_heap
from observability import metrics

# Log records, not prints: in production every line on stdout is JSON (docs/operations.md, "Logs").
logger = logging.getLogger("taskhub.grpc")


class Command(BaseCommand):
    help = "Serve the gRPC API (tasks.v1.TaskService, grpc.health.v1, server reflection)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.GRPC_HOST, help="default: GRPC_HOST (127.0.0.1)")
        parser.add_argument("--port", type=int, default=settings.GRPC_PORT, help="default: GRPC_PORT (50051)")
        parser.add_argument("--workers", type=int, default=settings.GRPC_WORKERS, help="threads running unary calls")
        parser.add_argument("--no-reflection", action="store_true", help="do not serve server reflection")
        parser.add_argument("--no-health", action="store_true", help="do not serve grpc.health.v1")
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.GRPC_METRICS_PORT,
            help="serve this process's /metrics on this port of --host (default: GRPC_METRICS_PORT; 0: none)",
        )

    def handle(self, *args: Any, host: str, port: int, workers: int, **options: Any) -> None:
        if not settings.GRPC_ENABLED:
            logger.info("gRPC is switched off (GRPC_ENABLED=false); not serving.")
            return
        # The handlers go in before the ports open: a SIGTERM sent as soon as the server listens must
        # stop it gracefully, not kill it. They only note the signal; the main thread shuts down.
        stopping = threading.Event()

        def stop(signum: int, frame: Any) -> None:
            logger.info(
                "gRPC: %s, shutting down (grace %s s)", signal.Signals(signum).name, settings.GRPC_SHUTDOWN_GRACE
            )
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        freeze_startup_heap()
        running = build_server(
            host=host,
            port=port,
            workers=workers,
            reflection_enabled=not options["no_reflection"] and settings.GRPC_REFLECTION_ENABLED,
            health_enabled=not options["no_health"] and settings.GRPC_HEALTH_ENABLED,
        )
        logger.info("gRPC: tasks.v1.TaskService on %s:%s (%s workers)", host, running.port, workers)
        metrics_server = None
        if options["metrics_port"] and settings.METRICS_ENABLED:
            if metrics.multiprocess_directory():
                logger.warning(
                    "gRPC: PROMETHEUS_MULTIPROC_DIR is set, so the HTTP /metrics already includes this "
                    "process; scrape one of the two, or every sum counts twice."
                )
            metrics_server = metrics.serve(host, options["metrics_port"])
            logger.info("gRPC: metrics on http://%s:%s/metrics", host, metrics_server.server_port)
        # Python runs signal handlers in the main thread only, between bytecodes. A signal the kernel
        # hands to another thread (gRPC's, the metrics server's) does not wake a main thread blocked
        # in an untimed wait, so the handler would wait for a second signal: wake up every 0.5 s.
        while not stopping.wait(0.5):
            pass
        started = time.monotonic()
        running.shutdown(settings.GRPC_SHUTDOWN_GRACE).wait()
        # How long the calls in flight took to finish: GRPC_SHUTDOWN_GRACE when they were cut off.
        logger.info("gRPC: stopped in %.1f s", time.monotonic() - started)
        if metrics_server is not None:
            metrics_server.shutdown()
