"""Builds the gRPC server: TaskService, interceptors, standard health and reflection, limits."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from django.conf import settings
from django.db import connection
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from api_grpc.generated.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from api_grpc.interceptors import default_interceptors
from api_grpc.reflection import enable_server_reflection
from api_grpc.servicers import TaskServicer
from api_grpc.streams import OpenStreams
from core.health import OK, check_database

logger = logging.getLogger(__name__)

SERVICE_NAME = tasks_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name


@dataclass
class Running:
    server: grpc.Server
    port: int
    health: health.HealthServicer | None
    checker: DatabaseHealthChecker | None
    streams: OpenStreams

    def shutdown(self, grace: float) -> threading.Event:
        """Report NOT_SERVING, refuse new calls (UNAVAILABLE), let unary calls in flight finish within
        `grace`; open streams end at once with UNAVAILABLE, telling clients to reconnect with their
        last event id (a stream would otherwise run until the grace period cuts it off)."""
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        if self.checker is not None:
            self.checker.stop()
        self.streams.close()
        return self.server.stop(grace)


class DatabaseHealthChecker(threading.Thread):
    """Reports NOT_SERVING while the database cannot answer `SELECT 1`, SERVING once it can."""

    def __init__(self, servicer: health.HealthServicer, interval: float) -> None:
        super().__init__(name="grpc-health", daemon=True)
        self.servicer = servicer
        self.interval = interval
        self._stopped = threading.Event()

    def check(self) -> bool:
        healthy = check_database()["status"] == OK
        status = health_pb2.HealthCheckResponse.SERVING if healthy else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE_NAME):
            self.servicer.set(service, status)
        return healthy

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                self.check()  # a failure is logged by the check
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self._stopped.set()


def build_server(
    *,
    host: str,
    port: int,
    workers: int | None = None,
    max_streams: int | None = None,
    reflection_enabled: bool | None = None,
    health_enabled: bool | None = None,
) -> Running:
    """Create and start the server; `port=0` picks a free port (tests).

    Every call holds a pool thread while it runs, a stream for as long as it is open. Unary calls
    (and health checks) run on the server's pool of GRPC_WORKERS threads, streams (server
    reflection's too) on `streams.pool` (api_grpc.streams): a stream never takes a unary call's
    thread, and however many unary calls are in progress (up to GRPC_MAX_CONCURRENT_RPCS, the rest
    waiting for a thread), at most GRPC_WORKERS threads run them, each with its own database
    connection.
    """
    streams = OpenStreams(settings.GRPC_MAX_STREAMS if max_streams is None else max_streams)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers or settings.GRPC_WORKERS, thread_name_prefix="grpc"),
        interceptors=default_interceptors(streams),
        maximum_concurrent_rpcs=settings.GRPC_MAX_CONCURRENT_RPCS + streams.limit,
        options=[
            ("grpc.max_receive_message_length", settings.GRPC_MAX_RECEIVE_MESSAGE_BYTES),
            ("grpc.max_send_message_length", settings.GRPC_MAX_SEND_MESSAGE_BYTES),
            # Keepalive: ping idle clients each minute; refuse clients that ping more than every 10 s.
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.so_reuseport", 0),  # a second server on the same port fails instead of sharing it
        ],
    )
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(TaskServicer(streams), server)

    health_servicer = checker = None
    if settings.GRPC_HEALTH_ENABLED if health_enabled is None else health_enabled:
        health_servicer = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        checker = DatabaseHealthChecker(health_servicer, settings.GRPC_HEALTH_CHECK_INTERVAL)
        checker.check()

    if settings.GRPC_REFLECTION_ENABLED if reflection_enabled is None else reflection_enabled:
        names = [SERVICE_NAME]
        if health_servicer is not None:
            names.append(health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
        enable_server_reflection(names, server)  # v1alpha and v1

    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"Cannot listen on {host}:{port}.")
    server.start()
    if checker is not None:
        checker.start()  # only once the port is ours: a failed bind leaves no thread behind
    return Running(server=server, port=bound, health=health_servicer, checker=checker, streams=streams)
