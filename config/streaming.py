"""The uvicorn server of the live-event streams: `manage.py serve` (`make run`) and the image's events
role (docker/events_server.py) both run it.

uvicorn, on SIGTERM or Ctrl-C, stops accepting, closes websockets (1012, service restart) and waits up
to its graceful-shutdown timeout for the responses in flight, and an event stream never finishes by
itself: every SSE stream would be cut at the end of the timeout, and every GraphQL subscription closed
before it could say why. This server first ends every open stream of the process
(`tasks.events.shutdown`: SSE `event: end` with `unavailable`, GraphQL and gRPC `UNAVAILABLE`, a reason
the client retries on with its last event id, on another replica), waits until the adapters have
closed them, then lets uvicorn stop as usual, all within the one graceful-shutdown timeout.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import uvicorn

POLL = 0.05  # seconds between two looks at the open streams while they end


class StreamingServer(uvicorn.Server):
    """uvicorn's server, with the event streams ended before uvicorn waits for the connections."""

    async def shutdown(self, sockets: list[Any] | None = None) -> None:  # uvicorn's: listening sockets
        from tasks import events  # the application has set Django up by now

        grace = float(self.config.timeout_graceful_shutdown or 0)
        deadline = time.monotonic() + grace
        events.shutdown()
        while events.open_streams() and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
        self.config.timeout_graceful_shutdown = max(1, round(deadline - time.monotonic()))
        await super().shutdown(sockets)
