"""`taskEvents` over the websocket, where the operation's life and the domain's subscription meet:
what the client does while the server subscribes, and the ids it resumes from. Real websocket
client, uvicorn serving config.asgi in this process (see test_subscriptions.py for the rest)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from core import eventlog
from tasks import events
from tests.api_graphql.test_subscriptions import create, error_of
from tests.api_graphql.websocket_client import GraphQLSocket
from tests.conftest import access_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("close", ["complete", "socket"])
def test_an_operation_ended_while_it_subscribes_frees_its_stream(
    asgi_server: str, user: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, close: str
) -> None:
    settings.EVENTS_MAX_STREAMS_PER_USER = 1
    for log in (eventlog.MemoryLog, eventlog.RedisStreamLog):  # subscribing reads it: a slow Redis
        position = log.position
        monkeypatch.setattr(log, "position", lambda self, _read=position: (time.sleep(0.3), _read(self))[1])
    with GraphQLSocket(asgi_server) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.subscribe()
        time.sleep(0.1)  # the server's thread is subscribing
        if close == "complete":
            socket.send({"id": "1", "type": "complete"})
            socket.sync()
        else:
            socket.socket.close()
        time.sleep(0.5)  # the thread is done subscribing
        deadline = time.monotonic() + 5
        while events.open_streams() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events.open_streams() == 0

    with GraphQLSocket(asgi_server) as again:  # the user's one stream is theirs again
        again.init({"Authorization": f"Bearer {access_token(user)}"})
        again.subscribe(id="2")
        deadline = time.monotonic() + 5
        while not events.open_streams() and time.monotonic() < deadline:
            time.sleep(0.05)
        task = create(asgi_server, user)
        assert [event["taskId"] for event in again.events(1, id="2")] == [task["id"]]


def test_an_id_written_in_other_digits_than_ascii_is_bad_user_input(asgi_server: str, user: Any) -> None:
    with GraphQLSocket(asgi_server) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.subscribe(variables={"after": "\uff11-\uff10"})  # full-width digits
        error = error_of(socket, "BAD_USER_INPUT")
        assert "after" in error["extensions"]["fields"]
    assert events.open_streams() == 0
