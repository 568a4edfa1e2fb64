"""`connection_init` of the GraphQL websocket: a key not of the shape the service issues is refused
like any bad key (4403), and a key that cannot be checked while the database is down closes the
socket with 1013 ("Try Again Later"); neither leaves the socket open or fails internally."""

from __future__ import annotations

from typing import Any

import pytest

from core.auth import api_key_create
from tests.api_graphql.websocket_client import GraphQLSocket
from tests.faults import database_unreachable

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("key", ["th_ab\u0000cd_secret", "th_0123456789ab_" + "\u0000" * 43])
def test_a_key_with_a_nul_closes_with_4403(asgi_server: str, key: str) -> None:
    """On PostgreSQL the NUL used to reach a query (DataError) and the socket stayed open."""
    with GraphQLSocket(asgi_server) as socket:
        socket.send({"type": "connection_init", "payload": {"X-API-Key": key}})
        assert socket.close_code() == (4403, "Forbidden")


def test_an_uncached_api_key_while_the_database_is_down_closes_with_1013(asgi_server: str, user: Any) -> None:
    _, raw = api_key_create(user=user, name="k")
    with database_unreachable(), GraphQLSocket(asgi_server) as socket:
        socket.send({"type": "connection_init", "payload": {"X-API-Key": raw}})
        assert socket.close_code() == (1013, "Try Again Later")
    with GraphQLSocket(asgi_server) as socket:  # and once it is back, the key works
        assert socket.init({"X-API-Key": raw}) == {"type": "connection_ack"}
