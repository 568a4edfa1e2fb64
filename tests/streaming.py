"""A real ASGI server for the tests of live events: uvicorn serving `config.asgi:application` in a
thread of the pytest process, so it shares the test database and, on the embedded default, the
in-process event log with the test itself.

    def test_x(asgi_server: str, transactional_db: None) -> None:
        url = f"{asgi_server}/api/v1/tasks/events"

Import the fixture into a test module or a conftest (`from tests.streaming import asgi_server`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from tests.live import free_port


@pytest.fixture
def asgi_server(transactional_db: None) -> Iterator[str]:
    """The base URL (`http://127.0.0.1:<port>`) of uvicorn serving the project's ASGI application."""
    from config.asgi import application

    port = free_port()
    # Off the main thread uvicorn installs no signal handlers (only the main thread may).
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, name="asgi-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
