"""`manage.py serve [--host H] [--port P] [--grpc-port G] [--noreload]`: the development server of
`make run`, HTTP and gRPC in one process.

HTTP is `config.asgi` under uvicorn: REST, GraphQL over HTTP and its websocket, and the Server-Sent
Events of `tasks/events` on one host and port, so a client needs one address. gRPC is the server of
`manage.py grpcserver` (`api_grpc.server.build_server`). They share the process because the embedded
event log (no REDIS_URL) lives in it: a write made over gRPC reaches an HTTP subscriber, and the
reverse, only in the same process. With Redis they could run apart, as they do in production.

uvicorn rather than daphne or Channels' runserver: it is already pinned (requirements/production.txt),
the tests run the ASGI application under it (tests/streaming.py), and it serves websockets without
another dependency. The code reloader is Django's, as with runserver: the parent process watches the
files and restarts the child, which serves. In DEBUG the static files (admin, browsable API, Swagger UI,
GraphiQL) are served as runserver serves them, by staticfiles' handler in front of the application.

Ctrl-C or SIGTERM stops both: open event streams end first (`event: end`, `unavailable`: reconnect
with the last id), then uvicorn lets requests finish and gRPC gives calls GRPC_SHUTDOWN_GRACE seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, NoReturn

import uvicorn
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management.base import BaseCommand, CommandParser
from django.utils import autoreload

from api_grpc.server import Running, build_server
from config.asgi import application
from config.streaming import StreamingServer

logger = logging.getLogger("taskhub.serve")


class Command(BaseCommand):
    help = "Serve HTTP (ASGI: REST, GraphQL, websockets, Server-Sent Events) and gRPC in one process."

    # The checks run in the serving process, after each reload.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="the HTTP and gRPC host (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="the HTTP port (default 8000)")
        parser.add_argument("--grpc-port", type=int, default=settings.GRPC_PORT, help="default: GRPC_PORT (50051)")
        parser.add_argument("--noreload", action="store_false", dest="reload", help="do not restart on code changes")

    def handle(self, *args: Any, host: str, port: int, grpc_port: int, reload: bool, **options: Any) -> None:
        self.http: StreamingServer | None = None
        self.stopped = threading.Event()
        if not reload:
            self.serve(host, port, grpc_port)
            return
        try:
            # In the child, `serve` runs in a thread of its own and the main thread watches the files;
            # it leaves by SystemExit (a file changed) or KeyboardInterrupt (caught by Django).
            autoreload.run_with_reloader(self.serve, host, port, grpc_port)
        finally:
            self.stop()

    def serve(self, host: str, port: int, grpc_port: int) -> None:
        """Both servers until uvicorn stops (a signal in the main thread, or `stop`), then gRPC."""
        self.check(display_num_errors=True)
        grpc: Running | None = None
        if settings.GRPC_ENABLED:
            try:
                grpc = build_server(host=host, port=grpc_port)
            except RuntimeError as error:  # the port is taken
                self.fail(f"gRPC: {error}")
            logger.info("gRPC: tasks.v1.TaskService on %s:%s", host, grpc.port)
        app: Any = ASGIStaticFilesHandler(application) if settings.DEBUG else application
        self.http = StreamingServer(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,  # Django's logging (config/settings/components/logging.py)
                access_log=False,  # ObservabilityMiddleware writes one line per request
                # Annotated int, used as asyncio.wait_for's timeout, which takes seconds as a float.
                timeout_graceful_shutdown=settings.GRPC_SHUTDOWN_GRACE,  # type: ignore[arg-type]
            )
        )
        if threading.current_thread() is threading.main_thread():
            # uvicorn handles SIGINT and SIGTERM while it serves, then raises the signal again once it has
            # stopped; with these handlers that only stops uvicorn (or, during start-up, stops it as soon as
            # it is up), so gRPC then stops gracefully too and the command exits normally.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self.on_signal)
        try:
            self.http.run()
        except SystemExit:
            pass  # uvicorn could not start (the port is taken) and logged why
        finally:
            if grpc is not None:
                grpc.shutdown(settings.GRPC_SHUTDOWN_GRACE).wait()
            self.stopped.set()
        if not self.http.started:
            self.fail(f"HTTP: cannot serve on {host}:{port}.")

    def fail(self, message: str) -> NoReturn:
        """Exit the process, also from the reloader's serving thread (where sys.exit would end only the
        thread, leaving a process that watches files and serves nothing), as runserver does."""
        self.stderr.write(message)
        os._exit(1)

    def on_signal(self, signum: int, frame: Any) -> None:
        if self.http is not None:
            self.http.should_exit = True

    def stop(self) -> None:
        """From the reloader's thread: stop the serving thread as a signal would, and wait for it."""
        if self.http is None:
            return  # the watching parent, or nothing started
        self.http.should_exit = True
        self.stopped.wait(2 * settings.GRPC_SHUTDOWN_GRACE + 5)
