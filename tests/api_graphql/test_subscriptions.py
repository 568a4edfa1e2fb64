"""`subscription { taskEvents }` over graphql-transport-ws at /graphql/: a real websocket client
against `config.asgi:application` under uvicorn, writes made over GraphQL HTTP to the same server.

Covers the events of each change, visibility, filters, resuming with `after`, the gap, the
credential (connection_init payload, upgrade headers, refusals, expiry), the origin and host
checks, the limits of the HTTP view, the stream limits and the heartbeat."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from api_rest.auth import TokenObtainSerializer
from core.auth import api_key_create, api_key_revoke
from core.types import Role
from tasks import events
from tasks.services import task_update
from tests.api_graphql.conftest import bearer, body_of, gql, only_error
from tests.api_graphql.websocket_client import TASK_EVENTS, GraphQLSocket, handshake_status
from tests.conftest import access_token
from tests.factories import UserFactory, actor_of

pytestmark = pytest.mark.django_db(transaction=True)


def mutate(base_url: str, user: Any, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """One GraphQL mutation over HTTP, as `user`; returns its data (no errors allowed)."""
    request = urllib.request.Request(
        base_url + "/graphql/",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {access_token(user)}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def create(base_url: str, user: Any, title: str = "A task", **fields: Any) -> dict[str, Any]:
    data = mutate(
        base_url,
        user,
        "mutation($input: TaskCreateInput!) { createTask(input: $input) { id version } }",
        {"input": {"title": title, **fields}},
    )
    task: dict[str, Any] = data["createTask"]
    return task


def update(base_url: str, user: Any, task_id: str, **fields: Any) -> None:
    mutate(
        base_url,
        user,
        "mutation($id: ID!, $input: TaskPatchInput!) { updateTask(id: $id, input: $input) { version } }",
        {"id": task_id, "input": fields},
    )


def delete(base_url: str, user: Any, task_id: str) -> None:
    mutate(base_url, user, "mutation($id: ID!) { deleteTask(id: $id) }", {"id": task_id})


@pytest.fixture
def subscriber(asgi_server: str) -> Iterator[Callable[..., GraphQLSocket]]:
    """`subscriber(user, variables=None)`: a socket of `user` (its Bearer token in connection_init),
    acknowledged and subscribed (id "1")."""
    sockets: list[GraphQLSocket] = []

    def open_for(user: Any, variables: dict[str, Any] | None = None) -> GraphQLSocket:
        socket = GraphQLSocket(asgi_server)
        sockets.append(socket)
        assert socket.init({"Authorization": f"Bearer {access_token(user)}"}) == {"type": "connection_ack"}
        socket.subscribe(variables=variables)
        socket.sync()  # the server has read `subscribe` before the test writes
        return socket

    yield open_for
    for socket in sockets:
        socket.socket.close()


def error_of(socket: GraphQLSocket, code: str, id: str = "1") -> dict[str, Any]:
    """The operation's terminal `error` message, with one error of extensions.code `code`."""
    message = socket.receive()
    assert message["type"] == "error" and message["id"] == id, message
    [error] = message["payload"]
    assert error["extensions"]["code"] == code, message
    return error  # type: ignore[no-any-return]


# -- the events ----------------------------------------------------------------------------------------------


def test_each_change_is_one_event_in_order(asgi_server: str, subscriber: Any, user: Any) -> None:
    socket = subscriber(user)

    task = create(asgi_server, user, "Write the report", priority="HIGH", tags=["Work"])
    update(asgi_server, user, task["id"], title="Write the final report")
    update(asgi_server, user, task["id"], status="COMPLETED")
    delete(asgi_server, user, task["id"])

    events = socket.events(4)
    assert [event["type"] for event in events] == ["CREATED", "UPDATED", "COMPLETED", "DELETED"]
    assert [event["version"] for event in events] == [1, 2, 3, 3]
    assert {event["taskId"] for event in events} == {task["id"]}
    assert {event["ownerId"] for event in events} == {user.id}
    ids = [event["id"] for event in events]
    assert len(set(ids)) == 4
    assert events[0]["task"] == {
        "id": task["id"], "title": "Write the report", "status": "TODO", "priority": "HIGH", "tags": ["work"],
        "version": 1,
    }  # fmt: skip
    assert events[1]["task"]["title"] == "Write the final report"
    assert events[2]["task"]["status"] == "COMPLETED"
    assert events[3]["task"] is None
    assert all(event["occurredAt"] for event in events)


def test_a_user_sees_only_the_events_of_tasks_they_may_see(asgi_server: str, subscriber: Any) -> None:
    alice, bob = UserFactory(), UserFactory()
    manager = UserFactory(role=Role.MANAGER)
    of_alice, of_bob, of_manager = subscriber(alice), subscriber(bob), subscriber(manager)

    alices = create(asgi_server, alice, "Alice's")
    bobs = create(asgi_server, bob, "Bob's")

    assert [event["taskId"] for event in of_alice.events(1)] == [alices["id"]]
    assert [event["taskId"] for event in of_bob.events(1)] == [bobs["id"]]
    assert [event["taskId"] for event in of_manager.events(2)] == [alices["id"], bobs["id"]]
    assert of_alice.nothing_within(0.5)
    assert of_bob.nothing_within(0.1)


def test_filters_choose_the_events(asgi_server: str, subscriber: Any, user: Any) -> None:
    manager = UserFactory(role=Role.MANAGER)
    high = subscriber(user, {"filters": {"priority": "HIGH"}})
    tagged = subscriber(user, {"filters": {"tag": "Home", "status": "TODO"}})
    mine = subscriber(manager, {"filters": {"mine": True}})

    create(asgi_server, user, "Low", priority="LOW", tags=["home"])
    urgent = create(asgi_server, user, "Urgent", priority="HIGH")
    own = create(asgi_server, manager, "The manager's own", tags=["home"])
    create(asgi_server, user, "Tagged", tags=["home"])

    assert [event["taskId"] for event in high.events(1)] == [urgent["id"]]
    assert [event["task"]["title"] for event in tagged.events(2)] == ["Low", "Tagged"]
    assert [event["taskId"] for event in mine.events(1)] == [own["id"]]
    for socket in (high, mine):
        assert socket.nothing_within(0.3)


def test_a_filter_that_is_not_valid_is_bad_user_input(asgi_server: str, user: Any) -> None:
    with GraphQLSocket(asgi_server) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.subscribe(variables={"filters": {"tag": "x" * 51}})
        error = error_of(socket, "BAD_USER_INPUT")
        assert "tag" in error["extensions"]["fields"]

        socket.subscribe(variables={"after": "not an event id"}, id="2")
        error = error_of(socket, "BAD_USER_INPUT", id="2")
        assert "after" in error["extensions"]["fields"]

        socket.subscribe(variables={"filters": {"priority": "URGENT"}}, id="3")
        error_of(socket, "BAD_USER_INPUT", id="3")


# -- resuming ------------------------------------------------------------------------------------------------


def test_after_resumes_with_every_missed_event_once_in_order(asgi_server: str, subscriber: Any, user: Any) -> None:
    socket = subscriber(user)
    first = create(asgi_server, user, "Seen")
    [seen] = socket.events(1)
    socket.socket.close()

    missed = [create(asgi_server, user, f"Missed {n}") for n in range(3)]
    again = subscriber(user, {"after": seen["id"]})
    live = create(asgi_server, user, "Live")

    events = again.events(4)
    assert [event["taskId"] for event in events] == [task["id"] for task in (*missed, live)]
    assert seen["id"] < events[0]["id"]
    assert first["id"] not in [event["taskId"] for event in events]
    assert again.nothing_within(0.3)


def test_resuming_before_the_retained_events_starts_with_a_gap(
    asgi_server: str, subscriber: Any, user: Any, settings: Any
) -> None:
    settings.EVENTS_RETENTION = 3
    settings.EVENTS_STREAM_KEY = f"test:events:{time.time_ns()}"
    socket = subscriber(user)
    task = create(asgi_server, user, "First")
    [first] = socket.events(1)
    socket.socket.close()
    for n in range(200):  # Redis trims whole nodes of about 100 entries (XADD MAXLEN ~)
        task_update(actor=actor_of(user), task_id=task["id"], changes={"title": f"Later {n}"})

    again = subscriber(user, {"after": first["id"]})

    [gap] = again.events(1)
    assert gap["type"] == "GAP"
    assert gap["taskId"] is None and gap["task"] is None
    assert gap["id"] >= first["id"]
    live = create(asgi_server, user, "After the gap")
    retained = []
    while (event := again.events(1)[0])["taskId"] != live["id"]:
        retained.append(event)
    assert len(retained) < 200
    assert all(event["type"] == "UPDATED" for event in retained)


# -- the credential ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Authorization", "authorization", "AUTHORIZATION"])
def test_a_bearer_token_in_connection_init(asgi_server: str, user: Any, key: str) -> None:
    with GraphQLSocket(asgi_server) as socket:
        assert socket.subprotocol == "graphql-transport-ws"
        assert socket.init({key: f"Bearer {access_token(user)}"}) == {"type": "connection_ack"}


def test_an_api_key_in_connection_init_or_on_the_upgrade_request(asgi_server: str, subscriber: Any, user: Any) -> None:
    _, raw = api_key_create(user=user, name="websocket")
    with GraphQLSocket(asgi_server) as socket:
        assert socket.init({"x-api-key": raw}) == {"type": "connection_ack"}
    with GraphQLSocket(asgi_server, headers={"X-API-Key": raw}) as socket:
        assert socket.init() == {"type": "connection_ack"}
        socket.subscribe()
        socket.sync()
        task = create(asgi_server, user)
        assert [event["taskId"] for event in socket.events(1)] == [task["id"]]
    with GraphQLSocket(asgi_server, headers={"Authorization": f"Bearer {access_token(user)}"}) as socket:
        assert socket.init({}) == {"type": "connection_ack"}


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "th_nope_nope"}, {"Authorization": 42}],
    ids=["no-payload", "no-credential", "bad-token", "bad-key", "not-text"],
)
def test_no_or_a_bad_credential_closes_with_4403(asgi_server: str, payload: dict[str, Any] | None) -> None:
    with GraphQLSocket(asgi_server) as socket:
        socket.send({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
        assert socket.close_code() == (4403, "Forbidden")


def test_a_subscribe_before_connection_init_closes_with_4401(asgi_server: str) -> None:
    with GraphQLSocket(asgi_server) as socket:
        socket.subscribe()
        assert socket.close_code() == (4401, "Unauthorized")


def test_the_stream_ends_when_the_token_expires(asgi_server: str, user: Any) -> None:
    token = TokenObtainSerializer.get_token(user).access_token
    token.set_exp(lifetime=timedelta(seconds=2))
    with GraphQLSocket(asgi_server) as socket:
        assert socket.init({"Authorization": f"Bearer {token}"}) == {"type": "connection_ack"}
        socket.subscribe()
        error_of(socket, "UNAUTHENTICATED")


def test_the_stream_ends_when_the_api_key_is_revoked(asgi_server: str, user: Any, settings: Any) -> None:
    settings.EVENTS_REAUTH_INTERVAL = 0.5
    key, raw = api_key_create(user=user, name="revoked soon")
    with GraphQLSocket(asgi_server) as socket:
        assert socket.init({"X-API-Key": raw}) == {"type": "connection_ack"}
        socket.subscribe()
        socket.sync()
        api_key_revoke(prefix=key.prefix)
        error_of(socket, "UNAUTHENTICATED")


def test_a_server_that_shuts_down_ends_the_stream_with_unavailable(
    asgi_server: str, subscriber: Any, user: Any
) -> None:
    socket = subscriber(user)

    events.shutdown()

    error = error_of(socket, "UNAVAILABLE")
    assert "reconnect" in error["message"]


# -- the transport -------------------------------------------------------------------------------------------


def test_the_legacy_graphql_ws_protocol_is_refused(asgi_server: str) -> None:
    with GraphQLSocket(asgi_server, subprotocols=["graphql-ws"]) as socket:
        assert socket.subprotocol is None
        assert socket.close_code() == (4406, "Subprotocol not acceptable")


def test_origins(asgi_server: str, user: Any, settings: Any) -> None:
    port = asgi_server.rsplit(":", 1)[1]
    # A browser page on this server's own origin, and a client that sends no Origin, may connect.
    for origin in (f"http://127.0.0.1:{port}", None):
        with GraphQLSocket(asgi_server, origin=origin) as socket:
            assert socket.init({"Authorization": f"Bearer {access_token(user)}"}) == {"type": "connection_ack"}
    # A page on any other origin may not, unless CORS allows that origin.
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]
    assert handshake_status(asgi_server, origin="https://evil.example") == 403
    assert handshake_status(asgi_server, origin=f"http://localhost:{port}") == 403
    with GraphQLSocket(asgi_server, origin="https://app.example") as socket:
        assert socket.init({"Authorization": f"Bearer {access_token(user)}"}) == {"type": "connection_ack"}
    settings.CORS_ENABLED = False
    assert handshake_status(asgi_server, origin="https://app.example") == 403


def test_a_host_outside_allowed_hosts_is_refused(asgi_server: str, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["api.example"]
    assert handshake_status(asgi_server) == 403


def test_no_websocket_elsewhere(asgi_server: str) -> None:
    assert handshake_status(asgi_server, path="/api/v1/tasks") == 403
    assert handshake_status(asgi_server, path="/graphql") == 403


def test_queries_and_mutations_go_over_http(asgi_server: str, user: Any) -> None:
    with GraphQLSocket(asgi_server) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.subscribe("{ me { username } }")
        assert "HTTP" in error_of(socket, "GRAPHQL_VALIDATION_FAILED")["message"]
        socket.subscribe('mutation { createTask(input: {title: "x"}) { id } }', id="2")
        error_of(socket, "GRAPHQL_VALIDATION_FAILED", id="2")


def test_a_subscription_over_http_is_refused_before_it_runs(client: Client, user: Any) -> None:
    response = gql(client, "subscription { taskEvents { id } }", **bearer(user))

    assert body_of(response)["data"] is None
    assert "websocket" in only_error(response, "GRAPHQL_VALIDATION_FAILED")["message"]


def test_the_limits_of_the_http_view_apply(asgi_server: str, user: Any) -> None:
    too_deep = "subscription { taskEvents { task { a { b { c { d { e { f { g { h } } } } } } } } } }"
    with GraphQLSocket(asgi_server) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.subscribe(too_deep)
        message = socket.receive()
        assert message["type"] == "error", message
        assert {error["extensions"]["code"] for error in message["payload"]} == {"GRAPHQL_VALIDATION_FAILED"}
        assert any("exceeds maximum operation depth of 8" in error["message"] for error in message["payload"])

        socket.subscribe("subscription { taskEvents { id", id="2")
        assert error_of(socket, "GRAPHQL_PARSE_FAILED", id="2")

        socket.subscribe("{ __schema { types { name } } }", id="3")  # introspection is off in tests
        message = socket.receive()
        assert message["type"] == "error", message
        assert any("introspection" in error["message"].lower() for error in message["payload"]), message


def test_an_operation_name_picks_the_subscription(asgi_server: str, subscriber: Any, user: Any) -> None:
    document = TASK_EVENTS + "\nsubscription Other { taskEvents { id } }"
    with GraphQLSocket(asgi_server) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.send({"id": "1", "type": "subscribe", "payload": {"query": document, "operationName": "Events"}})
        socket.send({"id": "2", "type": "subscribe", "payload": {"query": document}})
        socket.send({"id": "3", "type": "subscribe", "payload": {"query": document, "operationName": "Nope"}})
        errors = {message["id"]: message for message in (socket.receive(), socket.receive())}
        assert errors["2"]["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert errors["3"]["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        task = create(asgi_server, user)
        assert [event["taskId"] for event in socket.events(1)] == [task["id"]]


def test_the_server_pings(asgi_server: str, user: Any, settings: Any) -> None:
    settings.EVENTS_HEARTBEAT = 0.2
    with GraphQLSocket(asgi_server) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.subscribe()
        assert socket.nothing_within(1.0)
        assert socket.pings >= 2
        task = create(asgi_server, user)
        assert [event["taskId"] for event in socket.events(1)] == [task["id"]]


# -- the stream limits ---------------------------------------------------------------------------------------


def test_too_many_streams(asgi_server: str, user: Any, settings: Any) -> None:
    settings.EVENTS_MAX_STREAMS_PER_USER = 1
    with GraphQLSocket(asgi_server) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.subscribe(id="1")
        socket.subscribe(id="2")
        error_of(socket, "TOO_MANY_STREAMS", id="2")
        socket.send({"id": "1", "type": "complete"})
        socket.sync()
        socket.subscribe(id="3")  # the first stream's slot is free again
        task = create(asgi_server, user)
        assert [event["taskId"] for event in socket.events(1, id="3")] == [task["id"]]


def test_a_slow_consumer_is_dropped(asgi_server: str, user: Any, settings: Any) -> None:
    settings.EVENTS_BUFFER = 4
    # Each event is large (the same 10,000 characters under 14 aliases), and the client reads nothing
    # while the server writes far more than the socket buffers on both sides hold: the server's sends
    # block, the subscription's buffer fills, and the stream ends.
    copies = " ".join(f"d{n}: task {{ description }}" for n in range(14))
    with GraphQLSocket(asgi_server, receive_buffer=4096) as socket:
        socket.init({"Authorization": f"Bearer {access_token(user)}"})
        socket.subscribe(f"subscription {{ taskEvents {{ id {copies} }} }}")
        socket.sync()
        for n in range(60):
            create(asgi_server, user, f"Task {n}", description="x" * 10_000)
        received = 0
        while (message := socket.receive())["type"] == "next":
            received += 1
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "SLOW_CONSUMER"
        assert received < 60
