"""The image's events role (docker/entrypoint.sh): uvicorn serving `config.asgi:application`, the live-event
streams (Server-Sent Events, GraphQL websockets) beside the WSGI web role.

    python docker/events_server.py [--host 0.0.0.0] [--port 8000] [--graceful-shutdown 10]

Not the `uvicorn` command, because of SIGTERM: uvicorn stops accepting, then waits up to its graceful-shutdown
timeout for the responses in flight to finish, and an event stream never finishes by itself, so every stream
would be cut at the end of the timeout. This server first ends every open stream of the process
(`tasks.events.shutdown`: SSE `event: end` with `unavailable`, GraphQL `UNAVAILABLE`, a reason the client
retries on with its last event id, on another replica) and waits until the adapters have closed them; then
uvicorn closes the websockets (1012, service restart) and waits for the rest. Both together take at most
`--graceful-shutdown` seconds.

One process per container: uvicorn's worker supervisor builds its own servers, without this shutdown, so a
replica scales by containers (a stream waits on the event log, not on the CPU; the stream limits count per
process). The application reads X-Forwarded-For itself (TRUSTED_PROXY_COUNT), as under granian, so uvicorn's
proxy-header handling is off; the request log is the application's (Django's logging), not uvicorn's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time

import uvicorn

# /app, for `config.asgi` (this file is /app/docker/events_server.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

APPLICATION = "config.asgi:application"
POLL = 0.05  # seconds between two looks at the open streams while they end


class EventsServer(uvicorn.Server):
    """uvicorn's server, with the event streams ended before uvicorn waits for the connections."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Imported here: the application (loaded at start-up) has set Django up by now.
        from tasks import events

        grace = float(self.config.timeout_graceful_shutdown or 0)
        deadline = time.monotonic() + grace
        events.shutdown()
        while events.open_streams() and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
        self.config.timeout_graceful_shutdown = max(1, round(deadline - time.monotonic()))
        await super().shutdown(sockets)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the live-event streams (ASGI) with uvicorn.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--graceful-shutdown", type=int, default=10, help="seconds the streams get on SIGTERM")
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    config = uvicorn.Config(
        APPLICATION,
        host=options.host,
        port=options.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        lifespan="off",  # Django's ASGI handler speaks HTTP and websockets only
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=options.graceful_shutdown,
    )
    EventsServer(config).run()


if __name__ == "__main__":
    main()
