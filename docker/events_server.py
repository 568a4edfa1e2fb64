"""The image's events role (docker/entrypoint.sh): uvicorn serving `config.asgi:application`, the live-event
streams (Server-Sent Events, GraphQL websockets) beside the WSGI web role.

    python docker/events_server.py [--host 0.0.0.0] [--port 8000] [--graceful-shutdown 10]

Not the `uvicorn` command, because of SIGTERM: uvicorn would cut every event stream at the end of its
graceful-shutdown timeout. `config.streaming.StreamingServer` (which `manage.py serve` runs too) first ends
every open stream with a reason the client retries on, waits until they are closed, then stops as uvicorn
does; all within `--graceful-shutdown` seconds.

One process per container: uvicorn's worker supervisor builds its own servers, without this shutdown, so a
replica scales by containers (a stream waits on the event log, not on the CPU; the stream limits count per
process). The application reads X-Forwarded-For itself (TRUSTED_PROXY_COUNT), as under granian, so uvicorn's
proxy-header handling is off; the request log is the application's (Django's logging), not uvicorn's.
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

# /app, for `config.asgi` (this file is /app/docker/events_server.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from config.streaming import StreamingServer

APPLICATION = "config.asgi:application"


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
    StreamingServer(config).run()


if __name__ == "__main__":
    main()
