"""A GraphQL subscription client of taskhub: log in over HTTP, subscribe to `taskEvents` over the
graphql-transport-ws websocket at /graphql/, then create, complete and delete a task over GraphQL
HTTP and print the three events as they arrive.

    make run                                            # in another terminal
    .venv/bin/python examples/graphql_subscription.py   # uses the demo user

Only the `websockets` package is needed (installed with uvicorn[standard]). Pass the id of the last
event printed as `after` to resume from there: `... graphql_subscription.py 1764790000123-0`.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from typing import Any

from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

HTTP = os.environ.get("TASKHUB_HTTP", "http://127.0.0.1:8000")
SUBSCRIPTION = """
subscription Watch($after: String) {
  taskEvents(after: $after) { id type taskId version occurredAt task { title status } }
}
"""


def post(path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(HTTP + path, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def mutate(token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = post("/graphql/", {"query": query, "variables": variables}, token)
    if "errors" in answer:
        raise SystemExit(f"mutation failed: {answer['errors']}")
    data: dict[str, Any] = answer["data"]
    return data


def receive(socket: ClientConnection) -> dict[str, Any]:
    """The next message; the server's keep-alive pings are answered with a pong."""
    while True:
        message: dict[str, Any] = json.loads(socket.recv(timeout=30))
        if message["type"] != "ping":
            return message
        socket.send(json.dumps({"type": "pong"}))


def show(message: dict[str, Any]) -> dict[str, Any]:
    """Print the event of a `next` message and return it; any other message ends the example."""
    if message["type"] != "next":
        raise SystemExit(f"the stream ended: {message}")
    event: dict[str, Any] = message["payload"]["data"]["taskEvents"]
    print(json.dumps(event))
    return event


def main(after: str | None) -> None:
    token = post("/api/v1/auth/token", {"username": "demo", "password": "demo-password"})["access"]
    url = HTTP.replace("http", "ws", 1) + "/graphql/"
    with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], proxy=None) as socket:
        socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        print(receive(socket))  # {'type': 'connection_ack'}
        payload = {"query": SUBSCRIPTION, "variables": {"after": after}}
        socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        socket.send(json.dumps({"type": "ping"}))  # its pong: the server has read the subscribe
        while (message := receive(socket))["type"] != "pong":
            show(message)  # with `after`: the events missed since then come first

        task = mutate(token, "mutation($t: String!) { createTask(input: {title: $t}) { id } }", {"t": "Watch me"})
        task_id = task["createTask"]["id"]
        mutate(token, "mutation($id: ID!) { updateTask(id: $id, input: {status: COMPLETED}) { id } }", {"id": task_id})
        mutate(token, "mutation($id: ID!) { deleteTask(id: $id) }", {"id": task_id})

        seen = 0
        while seen < 3:
            seen += show(receive(socket))["taskId"] == task_id
        socket.send(json.dumps({"id": "1", "type": "complete"}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
