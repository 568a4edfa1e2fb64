"""Protocol drivers of the contract suite: one neutral interface, one implementation per protocol.

A scenario speaks only the neutral language of docs/domain.md and docs/api/errors.md:

- input: snake_case field names, lower-case enum values ("high", "in_progress"), `datetime` objects
  (a naive one is sent naive, so the service can refuse it);
- output: an `Outcome` whose `value` is a neutral task dict (the field names of docs/domain.md, lower-case enums,
  aware datetimes), a `Page` (items + the cursor of the next page) or None, and whose `error` is the
  name of a row of docs/api/errors.md ("not_found", "stale_version", ...), or NOT_EXPRESSIBLE when the driver's protocol
  has no form for the input and nothing was sent.

Each driver owns the translation to its protocol and ONE table from its error idiom (HTTP status,
GraphQL `extensions.code`, gRPC status) to those names. Adding a protocol means writing a driver and
registering it in `DRIVERS`; no scenario changes.

REST and GraphQL run in the test's thread, inside the test's transaction: every request runs its
`transaction.on_commit` callbacks when it returns, as the real commit would (pytest-django never
commits the test transaction; see tests/api_rest/conftest.py). Without that, reads after writes
would be served stale cache entries that production never serves.

gRPC talks to a real server running in this process on its own threads and database connections
(`SERVER_FIXTURE`): its tests run with committed data (`transaction=True`), see conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlsplit

import grpc
from django.test import Client, TestCase
from django.utils.dateparse import parse_datetime
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rest_framework.test import APIClient
from strawberry.utils.str_converters import to_camel_case

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from core.auth import api_key_create
from tests.conftest import access_token

# -- the neutral language --------------------------------------------------------------------------

# The rows of the error table (docs/api/errors.md), one name per row.
ERRORS = frozenset(
    {
        "invalid_input",
        "unauthenticated",
        "forbidden",
        "not_found",
        "stale_version",
        "idempotency_conflict",
        "rate_limited",
        "unavailable",
        "timeout",
        "internal",
    }
)

# Not a row of the error table but the driver's own outcome: the input has no form on the driver's
# protocol, so nothing was sent and no server decided anything. A scenario expects it only for the
# cases it names (`refusal`); anywhere else it fails the test like any other wrong outcome.
NOT_EXPRESSIBLE = "not_expressible"

# The task fields of docs/domain.md, in its order. `owner` is the owner's user id.
TASK_FIELDS = (
    "id",
    "owner",
    "title",
    "description",
    "priority",
    "status",
    "completed",
    "due_date",
    "tags",
    "created_at",
    "updated_at",
    "completed_at",
    "version",
)
DATETIME_FIELDS = frozenset({"due_date", "created_at", "updated_at", "completed_at"})
ENUM_FIELDS = frozenset({"priority", "status"})

Task = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a list: its tasks, and the cursor of the next page (None on the last page)."""

    items: list[Task]
    next_cursor: str | None

    @property
    def titles(self) -> list[str]:
        return [task["title"] for task in self.items]

    @property
    def ids(self) -> list[str]:
        return [task["id"] for task in self.items]


@dataclass(frozen=True)
class Outcome:
    """What one call gave: a value, or the error-table name of its error (+ the protocol's own detail)."""

    ok: bool
    value: Any = None
    error: str | None = None
    detail: Any = field(default=None, compare=False)
    # Invalid input: the fields it names, in the neutral (snake_case) spelling, each with its messages.
    fields: dict[str, list[str]] | None = field(default=None, compare=False)

    def unwrap(self) -> Any:
        """The value of a call that must succeed (the failure shows the protocol's detail)."""
        assert self.ok, f"expected success, got {self.error}: {self.detail}"
        return self.value


@dataclass(frozen=True)
class Credentials:
    """What a client sends to say who it is: a bearer token, an API key, both or neither; or, in
    `authorization`, a raw `Authorization` value (any scheme) sent in place of the bearer token."""

    bearer: str | None = None
    api_key: str | None = None
    authorization: str | None = None

    @property
    def authorization_value(self) -> str | None:
        """The `Authorization` header (gRPC: `authorization` metadata) to send, if any."""
        if self.authorization is not None:
            return self.authorization
        return f"Bearer {self.bearer}" if self.bearer is not None else None


class Driver(Protocol):
    """The task operations of docs/domain.md, reached through one protocol."""

    protocol: ClassVar[str]
    # The protocol's error idiom (HTTP status, extensions.code, gRPC status) → a name of ERRORS.
    ERROR_TABLE: ClassVar[Mapping[Any, str]]
    # None: the driver calls the application in the test's thread and transaction. Else the name of
    # the fixture that runs its server on other threads: its tests need committed data (conftest.py).
    SERVER_FIXTURE: ClassVar[str | None]

    def __init__(self, credentials: Credentials) -> None: ...

    def create(self, data: Mapping[str, Any], idempotency_key: str | None = None) -> Outcome: ...

    def get(self, task_id: str) -> Outcome: ...

    def list(
        self,
        filters: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Outcome: ...

    def mine(
        self,
        filters: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Outcome: ...

    def search(self, query: str, limit: int | None = None, cursor: str | None = None) -> Outcome: ...

    def update(self, task_id: str, changes: Mapping[str, Any], expected_version: int | None = None) -> Outcome: ...

    def delete(self, task_id: str, expected_version: int | None = None) -> Outcome: ...


def refusal(driver: Driver, case: str, not_expressible: Mapping[str, Collection[str]]) -> str:
    """The outcome a scenario expects for input the service must refuse: the server's `invalid_input`,
    or NOT_EXPRESSIBLE for the cases `not_expressible` names under the driver's protocol."""
    return NOT_EXPRESSIBLE if case in not_expressible.get(driver.protocol, ()) else "invalid_input"


@contextmanager
def _committing() -> Iterator[None]:
    """Run the on_commit callbacks registered during the block when it ends, as a commit would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        yield


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _parse_times(task: dict[str, Any]) -> Task:
    for name in DATETIME_FIELDS:
        if isinstance(task.get(name), str):
            parsed = parse_datetime(task[name])
            assert parsed is not None and parsed.tzinfo is not None, f"{name} is not an aware time: {task[name]!r}"
            task[name] = parsed
    return task


# -- REST ------------------------------------------------------------------------------------------


class RestDriver:
    """DRF's APIClient against /api/v1/ (problem details for errors)."""

    protocol: ClassVar[str] = "rest"
    SERVER_FIXTURE: ClassVar[str | None] = None
    BASE = "/api/v1/tasks"

    # The error table, REST column. 409 and 422 are both the idempotency row (in flight / other input).
    ERROR_TABLE: ClassVar[dict[int, str]] = {
        400: "invalid_input",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        412: "stale_version",
        409: "idempotency_conflict",
        422: "idempotency_conflict",
        429: "rate_limited",
        503: "unavailable",
        504: "timeout",
        500: "internal",
    }

    def __init__(self, credentials: Credentials) -> None:
        self.client = APIClient()
        headers = {}
        if (authorization := credentials.authorization_value) is not None:
            headers["HTTP_AUTHORIZATION"] = authorization
        if credentials.api_key is not None:
            headers["HTTP_X_API_KEY"] = credentials.api_key
        self.client.credentials(**headers)

    # transport

    def _send(self, method: str, path: str, ok: set[int], **kwargs: Any) -> tuple[Any, Outcome | None]:
        with _committing():
            response = getattr(self.client, method)(path, **kwargs)
        if response.status_code in ok:
            return response, None
        try:
            detail = json.loads(response.content)
        except ValueError:
            detail = response.content[:500]
        error = self.ERROR_TABLE.get(response.status_code, f"unmapped REST status {response.status_code}")
        fields = detail.get("errors") if isinstance(detail, dict) else None
        return response, Outcome(ok=False, error=error, detail=detail, fields=fields)

    @staticmethod
    def _task(body: dict[str, Any]) -> Task:
        return _parse_times({name: body[name] for name in TASK_FIELDS})

    @staticmethod
    def _body(data: Mapping[str, Any]) -> dict[str, Any]:
        """The request's JSON, spelled as most clients spell it (Python's json, requests, a browser's
        JSON.stringify of a string it holds): every character that is not ASCII as a \\u escape, which
        also carries a lone surrogate ("\\ud800") that no UTF-8 encoder could write."""
        return {
            "data": json.dumps({name: _iso(value) for name, value in data.items()}),
            "content_type": "application/json",
        }

    def _page(self, path: str, filters: Mapping[str, Any] | None, **params: Any) -> Outcome:
        query = {name: _iso(value) for name, value in (filters or {}).items()}
        for name, value in params.items():
            if value is not None:
                query[name] = value
        query = {name: str(value).lower() if isinstance(value, bool) else value for name, value in query.items()}
        response, failure = self._send("get", path, {200}, data=query)
        if failure:
            return failure
        body = response.json()
        next_url = body["next"]
        next_cursor = parse_qs(urlsplit(next_url).query)["cursor"][0] if next_url else None
        return Outcome(ok=True, value=Page([self._task(item) for item in body["results"]], next_cursor))

    # operations

    def create(self, data: Mapping[str, Any], idempotency_key: str | None = None) -> Outcome:
        headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key is not None else {}
        response, failure = self._send("post", self.BASE, {201}, **self._body(data), **headers)
        return failure or Outcome(ok=True, value=self._task(response.json()))

    def get(self, task_id: str) -> Outcome:
        response, failure = self._send("get", f"{self.BASE}/{task_id}", {200})
        return failure or Outcome(ok=True, value=self._task(response.json()))

    def list(
        self,
        filters: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Outcome:
        return self._page(self.BASE, filters, ordering=ordering, limit=limit, cursor=cursor)

    def mine(
        self,
        filters: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Outcome:
        return self._page(f"{self.BASE}/me", filters, ordering=ordering, limit=limit, cursor=cursor)

    def search(self, query: str, limit: int | None = None, cursor: str | None = None) -> Outcome:
        return self._page(self.BASE, {"search": query}, limit=limit, cursor=cursor)

    def update(self, task_id: str, changes: Mapping[str, Any], expected_version: int | None = None) -> Outcome:
        headers = {"HTTP_IF_MATCH": f'"{expected_version}"'} if expected_version is not None else {}
        response, failure = self._send("patch", f"{self.BASE}/{task_id}", {200}, **self._body(changes), **headers)
        return failure or Outcome(ok=True, value=self._task(response.json()))

    def delete(self, task_id: str, expected_version: int | None = None) -> Outcome:
        headers = {"HTTP_IF_MATCH": f'"{expected_version}"'} if expected_version is not None else {}
        _, failure = self._send("delete", f"{self.BASE}/{task_id}", {204}, **headers)
        return failure or Outcome(ok=True, value=None)


# -- GraphQL ---------------------------------------------------------------------------------------


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


_TASK_SELECTION = " ".join(to_camel_case("owner_id" if name == "owner" else name) for name in TASK_FIELDS)
_CONNECTION_SELECTION = f"edges {{ node {{ {_TASK_SELECTION} }} }} pageInfo {{ hasNextPage endCursor }}"
_LIST_ARGUMENTS = "(filters: $filters, ordering: $ordering, first: $first, after: $after)"
_LIST_VARIABLES = "($filters: TaskFilterInput, $ordering: TaskOrdering!, $first: Int, $after: String)"


class GraphQLDriver:
    """django.test.Client POSTing JSON to /graphql/ (errors carry `extensions.code`)."""

    protocol: ClassVar[str] = "graphql"
    SERVER_FIXTURE: ClassVar[str | None] = None
    URL = "/graphql/"

    # The error table, GraphQL column.
    ERROR_TABLE: ClassVar[dict[str, str]] = {
        "BAD_USER_INPUT": "invalid_input",
        "UNAUTHENTICATED": "unauthenticated",
        "FORBIDDEN": "forbidden",
        "NOT_FOUND": "not_found",
        "PRECONDITION_FAILED": "stale_version",
        "CONFLICT": "idempotency_conflict",
        "RATE_LIMITED": "rate_limited",
        "UNAVAILABLE": "unavailable",
        "TIMEOUT": "timeout",
        "INTERNAL_SERVER_ERROR": "internal",
    }

    def __init__(self, credentials: Credentials) -> None:
        self.client = Client()
        self.headers: dict[str, str] = {}
        if (authorization := credentials.authorization_value) is not None:
            self.headers["HTTP_AUTHORIZATION"] = authorization
        if credentials.api_key is not None:
            self.headers["HTTP_X_API_KEY"] = credentials.api_key

    # transport

    def _execute(self, document: str, variables: dict[str, Any], path: list[str]) -> tuple[Any, Outcome | None]:
        """Run one operation; the value at `path` of `data`, or the Outcome of its first error."""
        payload = json.dumps({"query": document, "variables": variables})
        with _committing():
            response = self.client.post(self.URL, payload, content_type="application/json", **self.headers)
        try:
            body = json.loads(response.content)
        except ValueError:
            detail = response.content[:500]
            return None, Outcome(ok=False, error=f"unmapped GraphQL HTTP {response.status_code}", detail=detail)
        if body.get("errors"):
            first = body["errors"][0]
            code = (first.get("extensions") or {}).get("code")
            error = self.ERROR_TABLE.get(code, f"unmapped GraphQL code {code}")
            named = (first.get("extensions") or {}).get("fields")
            fields = {_snake(name): messages for name, messages in named.items()} if named is not None else None
            return None, Outcome(ok=False, error=error, detail=body["errors"], fields=fields)
        value = body["data"]
        for name in path:
            value = value[name]
        return value, None

    @staticmethod
    def _task(node: dict[str, Any]) -> Task:
        task = {_snake(name): value for name, value in node.items()}
        task["owner"] = task.pop("owner_id")
        for name in ENUM_FIELDS:
            task[name] = task[name].lower()
        return _parse_times({name: task[name] for name in TASK_FIELDS})

    @classmethod
    def _page(cls, connection: dict[str, Any]) -> Page:
        info = connection["pageInfo"]
        items = [cls._task(edge["node"]) for edge in connection["edges"]]
        return Page(items, info["endCursor"] if info["hasNextPage"] else None)

    @staticmethod
    def _input(data: Mapping[str, Any]) -> dict[str, Any]:
        """Neutral fields → GraphQL input: camelCase names, UPPER enum values, ISO 8601 times."""
        converted = {}
        for name, value in data.items():
            if name in ENUM_FIELDS and isinstance(value, str):
                value = value.upper()
            converted[to_camel_case(name)] = _iso(value)
        return converted

    @staticmethod
    def _ordering(ordering: str) -> str:
        """ "-due_date" → DUE_DATE_DESC."""
        return ordering.lstrip("-").upper() + ("_DESC" if ordering.startswith("-") else "")

    def _list_variables(
        self, filters: Mapping[str, Any] | None, ordering: str | None, limit: int | None, cursor: str | None
    ) -> dict[str, Any]:
        return {
            "filters": self._input(filters) if filters is not None else None,
            "ordering": self._ordering(ordering or "-created_at"),
            "first": limit,
            "after": cursor,
        }

    # operations

    def create(self, data: Mapping[str, Any], idempotency_key: str | None = None) -> Outcome:
        document = (
            "mutation Create($input: TaskCreateInput!, $key: String) "
            f"{{ createTask(input: $input, idempotencyKey: $key) {{ {_TASK_SELECTION} }} }}"
        )
        node, failure = self._execute(document, {"input": self._input(data), "key": idempotency_key}, ["createTask"])
        return failure or Outcome(ok=True, value=self._task(node))

    def get(self, task_id: str) -> Outcome:
        document = f"query Get($id: ID!) {{ task(id: $id) {{ {_TASK_SELECTION} }} }}"
        node, failure = self._execute(document, {"id": task_id}, ["task"])
        return failure or Outcome(ok=True, value=self._task(node))

    def list(
        self,
        filters: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Outcome:
        document = f"query List{_LIST_VARIABLES} {{ tasks{_LIST_ARGUMENTS} {{ {_CONNECTION_SELECTION} }} }}"
        variables = self._list_variables(filters, ordering, limit, cursor)
        connection, failure = self._execute(document, variables, ["tasks"])
        return failure or Outcome(ok=True, value=self._page(connection))

    def mine(
        self,
        filters: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Outcome:
        document = f"query Mine{_LIST_VARIABLES} {{ me {{ tasks{_LIST_ARGUMENTS} {{ {_CONNECTION_SELECTION} }} }} }}"
        variables = self._list_variables(filters, ordering, limit, cursor)
        connection, failure = self._execute(document, variables, ["me", "tasks"])
        return failure or Outcome(ok=True, value=self._page(connection))

    def search(self, query: str, limit: int | None = None, cursor: str | None = None) -> Outcome:
        document = (
            "query Search($query: String!, $first: Int, $after: String) "
            f"{{ searchTasks(query: $query, first: $first, after: $after) {{ {_CONNECTION_SELECTION} }} }}"
        )
        variables = {"query": query, "first": limit, "after": cursor}
        connection, failure = self._execute(document, variables, ["searchTasks"])
        return failure or Outcome(ok=True, value=self._page(connection))

    def update(self, task_id: str, changes: Mapping[str, Any], expected_version: int | None = None) -> Outcome:
        document = (
            "mutation Update($id: ID!, $input: TaskPatchInput!, $version: Int) "
            f"{{ updateTask(id: $id, input: $input, expectedVersion: $version) {{ {_TASK_SELECTION} }} }}"
        )
        variables = {"id": task_id, "input": self._input(changes), "version": expected_version}
        node, failure = self._execute(document, variables, ["updateTask"])
        return failure or Outcome(ok=True, value=self._task(node))

    def delete(self, task_id: str, expected_version: int | None = None) -> Outcome:
        document = "mutation Delete($id: ID!, $version: Int) { deleteTask(id: $id, expectedVersion: $version) }"
        deleted, failure = self._execute(document, {"id": task_id, "version": expected_version}, ["deleteTask"])
        if failure:
            return failure
        assert deleted is True, f"deleteTask answered {deleted!r}"
        return Outcome(ok=True, value=None)


# -- gRPC ------------------------------------------------------------------------------------------


class Unsendable(ValueError):
    """A neutral input that has no form in tasks.v1 or in gRPC metadata: the driver cannot send it."""


def _message(message_class: type[Message], fields: Mapping[str, Any]) -> Message:
    """Build a request message as a client would. Protobuf refuses a value of the wrong type, and a
    field the message lacks: tasks.v1 gives it no field number, so no bytes can say its name (a
    number tasks.v1 does not define is an unknown field, which the server refuses, but no number
    stands for `colour`)."""
    try:
        return message_class(**fields)
    except (ValueError, TypeError) as exc:
        raise Unsendable(f"{message_class.DESCRIPTOR.name}: {exc}") from exc


def _enum_number(enum: Any, prefix: str, value: Any) -> int:
    """ "in_progress" → STATUS_IN_PROGRESS; None → unset (0). A value tasks.v1 does not define goes on the
    wire as a number the enum does not define (proto3 enums are open), which the server must refuse."""
    if value is None:
        return 0
    known = enum.DESCRIPTOR.values_by_name.get(f"{prefix}_{value.upper()}") if isinstance(value, str) else None
    if known is not None and known.number != 0:
        return int(known.number)
    return max(number.number for number in enum.DESCRIPTOR.values) + 1


def _not_an_instant() -> Timestamp:
    """A Timestamp that names no instant: its nanos must lie in 0..999,999,999 and here are -1. The
    wire carries it as it carries any Timestamp; only the receiver's validation can refuse it."""
    return Timestamp(seconds=0, nanos=-1)


def _timestamp(name: str, value: Any) -> Timestamp | None:
    """An aware datetime → its Timestamp; a value that is not a time ("next tuesday") → a Timestamp
    that is not an instant either, which the server must refuse; None → unset."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return _not_an_instant()
    if value.tzinfo is None or value.utcoffset() is None:
        # Every Timestamp is an instant, so a naive time has no form: sending it as UTC would be a
        # guess that changes the input, and the server would accept the guess.
        raise Unsendable(f"{name}: {value!r} is naive; a Timestamp holds only instants")
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _metadata_value(name: str, value: str) -> str:
    """gRPC carries ASCII metadata values of printable characters only (PROTOCOL-HTTP2.md, ASCII-Value);
    grpcio refuses anything else before sending (INTERNAL "Invalid metadata")."""
    if not all(" " <= char <= "~" for char in value):
        raise Unsendable(f"metadata {name}: {value!r} has characters gRPC metadata cannot carry")
    return value


class GrpcDriver:
    """tasks.v1.TaskService through a real channel to a real server running in this process.

    The contract fixtures start the server (`api_grpc.server.build_server`) and point `channel` at it.
    Credentials go as metadata (`authorization: Bearer …`, `x-api-key`), an idempotency key as
    `idempotency-key`.

    Neutral input → proto: enum names → enum numbers (a name tasks.v1 lacks → a number it lacks, which
    the server refuses), aware datetimes → Timestamps, a value that is not a time → a Timestamp that
    is not an instant (nanos -1, which the server refuses), None → the field unset (for an update,
    named in the mask and unset: cleared). An update names exactly the changed fields in its
    FieldMask (a field the Task message lacks, e.g. "colour", is named in the mask only: the server
    refuses it).

    Some neutral inputs have no form on the wire at all. The driver sends nothing and reports
    NOT_EXPRESSIBLE (`detail` says why), never a row of the error table, since no server decided:
    - a field the request message lacks (create with `version` or `colour`): it has no field number
      (bytes under a number tasks.v1 does not define are refused as an unknown field, whatever it
      was meant to be);
    - a naive datetime: every Timestamp is an instant, and sending it as UTC would change the input;
    - null for any field but a time: proto3 has no null, and an unset field is its zero value (a
      create's default, an update's "set to zero"), another input than null;
    - `limit=0`: page_size 0 is proto3's unset value and means "the default page size" (tasks.v1);
    - an empty `tag` filter: an empty string is proto3's unset value, so it means "no tag filter";
    - metadata gRPC cannot carry: its ASCII values are printable characters only (`_metadata_value`),
      so an idempotency key with a tab cannot be sent.
    A scenario names the cases it expects this for (`refusal`).
    """

    protocol: ClassVar[str] = "grpc"
    SERVER_FIXTURE: ClassVar[str | None] = "grpc_server"
    TIMEOUT = 10.0  # seconds: a bug must fail the call, not hang the suite

    # Set by the `grpc_server` fixture (conftest.py) while the server runs.
    channel: ClassVar[grpc.Channel | None] = None

    # The error table, gRPC column. Two statuses stand for two rows each; the `taskhub-error-code` trailer
    # (the core.errors code) tells them apart, so those rows are keyed (status, trailer).
    ERROR_TABLE: ClassVar[dict[grpc.StatusCode | tuple[grpc.StatusCode, str], str]] = {
        (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"): "invalid_input",
        grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
        grpc.StatusCode.PERMISSION_DENIED: "forbidden",
        grpc.StatusCode.NOT_FOUND: "not_found",
        (grpc.StatusCode.ABORTED, "stale_version"): "stale_version",
        (grpc.StatusCode.INVALID_ARGUMENT, "idempotency_key_reused"): "idempotency_conflict",
        (grpc.StatusCode.ABORTED, "idempotency_key_in_flight"): "idempotency_conflict",
        grpc.StatusCode.RESOURCE_EXHAUSTED: "rate_limited",
        grpc.StatusCode.UNAVAILABLE: "unavailable",
        grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
        grpc.StatusCode.INTERNAL: "internal",
    }

    _ENUMS: ClassVar[dict[str, tuple[Any, str]]] = {
        "priority": (pb.Priority, "PRIORITY"),
        "status": (pb.Status, "STATUS"),
    }
    _TIMES = frozenset({"due_date", "due_before", "due_after"})

    def __init__(self, credentials: Credentials) -> None:
        if self.channel is None:
            raise RuntimeError("No gRPC server: gRPC drivers work only under the contract fixtures (conftest.py).")
        self.stub = pb_grpc.TaskServiceStub(self.channel)
        self.metadata: list[tuple[str, str]] = []
        if (authorization := credentials.authorization_value) is not None:
            self.metadata.append(("authorization", authorization))
        if credentials.api_key is not None:
            self.metadata.append(("x-api-key", credentials.api_key))

    # transport

    def _call(self, method: str, build: Any, idempotency_key: str | None = None) -> tuple[Any, Outcome | None]:
        """Build the request (`build()`), send it; the response, or the Outcome of its failure."""
        try:
            request = build()
            metadata = [(name, _metadata_value(name, value)) for name, value in self.metadata]
            if idempotency_key is not None:
                metadata.append(("idempotency-key", _metadata_value("idempotency-key", idempotency_key)))
        except Unsendable as exc:
            return None, Outcome(ok=False, error=NOT_EXPRESSIBLE, detail=f"not expressible on gRPC, never sent: {exc}")
        try:
            response = getattr(self.stub, method)(request, metadata=metadata, timeout=self.TIMEOUT)
        except grpc.RpcError as exc:
            return None, self._failure(exc)
        return response, None

    def _failure(self, exc: grpc.RpcError) -> Outcome:
        code: grpc.StatusCode = exc.code()
        trailers = dict(exc.trailing_metadata() or ())
        error_code = trailers.get("taskhub-error-code")
        error = self.ERROR_TABLE.get((code, error_code)) or self.ERROR_TABLE.get(code)
        detail = {"status": code.name, "message": exc.details(), "trailers": trailers}
        named = trailers.get("taskhub-field-errors")
        fields = json.loads(named) if named is not None else None
        error = error or f"unmapped gRPC status {code.name} ({error_code})"
        return Outcome(ok=False, error=error, detail=detail, fields=fields)

    @staticmethod
    def _task(message: pb.Task) -> Task:
        def time(name: str) -> datetime | None:
            return getattr(message, name).ToDatetime(tzinfo=UTC) if message.HasField(name) else None

        return {
            "id": message.id,
            "owner": message.owner_id,
            "title": message.title,
            "description": message.description,
            "priority": pb.Priority.Name(message.priority).removeprefix("PRIORITY_").lower(),
            "status": pb.Status.Name(message.status).removeprefix("STATUS_").lower(),
            "completed": message.completed,
            "due_date": time("due_date"),
            "tags": list(message.tags),
            "created_at": time("created_at"),
            "updated_at": time("updated_at"),
            "completed_at": time("completed_at"),
            "version": message.version,
        }

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """Neutral fields → proto field values (names are the same)."""
        fields = {}
        for name, value in data.items():
            if name in cls._ENUMS:
                value = _enum_number(*cls._ENUMS[name], value)
            elif name in cls._TIMES:
                value = _timestamp(name, value)
            fields[name] = value
        return fields

    @staticmethod
    def _ordering(ordering: str | None) -> int:
        """ "-due_date" → TASK_ORDERING_DUE_DATE_DESC; None → unset (the default order)."""
        if ordering is None:
            return pb.TASK_ORDERING_UNSPECIFIED
        name = ordering.lstrip("-") + ("_desc" if ordering.startswith("-") else "")
        return _enum_number(pb.TaskOrdering, "TASK_ORDERING", name)

    def _list(
        self,
        filters: Mapping[str, Any] | None,
        ordering: str | None,
        limit: int | None,
        cursor: str | None,
        **options: Any,
    ) -> Outcome:
        def build() -> Message:
            if limit == 0:
                raise Unsendable("page_size: 0 is the unset value (the default page size), not a page of 0")
            # An empty string is proto3's unset value: an unset `tag`; for an enum or a Timestamp filter
            # there is no string at all. Only `search` takes empty text, which matches what unset does.
            if empty := sorted(name for name, value in (filters or {}).items() if value == "" and name != "search"):
                raise Unsendable(f"{', '.join(empty)}: proto3 has no empty filter value, only an unset field")
            if cursor == "":
                raise Unsendable("page_token: an empty string is proto3's unset value (the first page), not a cursor")
            fields = self._fields(filters or {})
            fields.update(ordering=self._ordering(ordering), page_size=limit, page_token=cursor, **options)
            return _message(pb.ListTasksRequest, fields)

        response, failure = self._call("ListTasks", build)
        if failure:
            return failure
        items = [self._task(message) for message in response.tasks]
        return Outcome(ok=True, value=Page(items, response.next_page_token or None))

    # operations

    @staticmethod
    def _no_null(data: Mapping[str, Any]) -> None:
        """proto3 has no null: an unset field is its zero value, which a create takes as the default
        and an update (named in the mask) as "set to the zero value". Only a Timestamp's absence
        means what null means (no due date)."""
        if nulls := sorted(name for name, value in data.items() if value is None and name not in GrpcDriver._TIMES):
            raise Unsendable(f"{', '.join(nulls)}: null; proto3 has no null, an unset field is its zero value")

    def create(self, data: Mapping[str, Any], idempotency_key: str | None = None) -> Outcome:
        def build() -> Message:
            self._no_null(data)
            return _message(pb.CreateTaskRequest, self._fields(data))

        response, failure = self._call("CreateTask", build, idempotency_key)
        return failure or Outcome(ok=True, value=self._task(response.task))

    def get(self, task_id: str) -> Outcome:
        response, failure = self._call("GetTask", lambda: pb.GetTaskRequest(id=task_id))
        return failure or Outcome(ok=True, value=self._task(response.task))

    def list(
        self,
        filters: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Outcome:
        return self._list(filters, ordering, limit, cursor)

    def mine(
        self,
        filters: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Outcome:
        return self._list(filters, ordering, limit, cursor, only_mine=True)

    def search(self, query: str, limit: int | None = None, cursor: str | None = None) -> Outcome:
        return self._list({"search": query}, None, limit, cursor)

    def update(self, task_id: str, changes: Mapping[str, Any], expected_version: int | None = None) -> Outcome:
        def build() -> Message:
            self._no_null(changes)
            carried = {name: value for name, value in changes.items() if name in pb.Task.DESCRIPTOR.fields_by_name}
            return pb.UpdateTaskRequest(
                id=task_id,
                task=_message(pb.Task, self._fields(carried)),
                update_mask=FieldMask(paths=list(changes)),
                expected_version=expected_version,
            )

        response, failure = self._call("UpdateTask", build)
        return failure or Outcome(ok=True, value=self._task(response.task))

    def delete(self, task_id: str, expected_version: int | None = None) -> Outcome:
        _, failure = self._call(
            "DeleteTask",
            lambda: _message(pb.DeleteTaskRequest, {"id": task_id, "expected_version": expected_version}),
        )
        return failure or Outcome(ok=True, value=None)


# -- registry --------------------------------------------------------------------------------------

DRIVERS: dict[str, type[Driver]] = {
    RestDriver.protocol: RestDriver,
    GraphQLDriver.protocol: GraphQLDriver,
    GrpcDriver.protocol: GrpcDriver,
}
PROTOCOLS = list(DRIVERS)


class Connect:
    """Builds drivers of one protocol for a user (a real JWT), an API key, a raw token or nobody."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.driver_class = DRIVERS[protocol]

    def as_user(self, user: Any) -> Driver:
        return self.driver_class(Credentials(bearer=access_token(user)))

    def anonymous(self) -> Driver:
        return self.driver_class(Credentials())

    def with_token(self, raw_token: str) -> Driver:
        return self.driver_class(Credentials(bearer=raw_token))

    def with_api_key(self, user: Any, *, read_only: bool = False) -> Driver:
        return self.with_raw_api_key(new_api_key(user, read_only=read_only))

    def with_raw_api_key(self, raw_key: str) -> Driver:
        return self.driver_class(Credentials(api_key=raw_key))

    def with_credentials(self, credentials: Credentials) -> Driver:
        return self.driver_class(credentials)


def new_api_key(user: Any, *, read_only: bool = False) -> str:
    _, raw = api_key_create(user=user, name="contract key", read_only=read_only)
    return raw
