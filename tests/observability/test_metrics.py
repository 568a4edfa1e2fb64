"""/metrics in one process: the labels of every protocol, bounded series, exact counts, the in-flight
gauge, the cache and rate-limit counters, and django-prometheus' database and cache metrics.

Requests go through the real stack (Django's test client for HTTP, a real gRPC server and channel in
this process for gRPC), and every reading is a real scrape of /metrics parsed with prometheus_client's
text parser. The metrics live in prometheus_client's process-global registry, which earlier tests
have fed too: every assertion compares two scrapes (a delta), never an absolute value. A scrape is
itself a request, counted once it is answered: each delta includes the `GET /metrics` of the scrape
before it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from django.conf import settings
from django.db import connections
from django.test import Client, override_settings
from google.protobuf.field_mask_pb2 import FieldMask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from rest_framework.test import APIClient

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from observability import metrics
from tasks.models import Task
from tests.api_graphql.conftest import bearer as graphql_bearer
from tests.api_graphql.conftest import gql
from tests.api_grpc import conftest as grpc_fixtures
from tests.api_grpc.helpers import a_call_waits_on_a_lock, fails, ok, row_locked, wait_until
from tests.api_grpc.helpers import bearer as grpc_bearer
from tests.observability.metrics_live import Scrape, delta, durations_of

# The real in-process gRPC server and channels of the gRPC adapter tests, as fixtures of this module.
start_server = grpc_fixtures.start_server
grpc_server = grpc_fixtures.grpc_server
open_channel = grpc_fixtures.open_channel
channel = grpc_fixtures.channel
stub = grpc_fixtures.stub

REST_TASK = "/api/v1/tasks/{task_id}"
SCRAPE = ("http", "GET", "/metrics", "200")
GET_TASK = "/tasks.v1.TaskService/GetTask"
SERVICE = "/tasks.v1.TaskService/"
DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
    }
}
DISTINCT_IDS = 1000


def scrape(client: Client | None = None) -> Scrape:
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(response.content.decode())


def requests_delta(before: Scrape, after: Scrape) -> dict[Any, float]:
    return delta(before.requests(), after.requests())


def assert_histogram_follows(before: Scrape, after: Scrape) -> None:
    """api_request_duration_seconds observed exactly one duration per counted request."""
    assert delta(before.durations(), after.durations()) == durations_of(requests_delta(before, after))


@pytest.fixture
def many_operations(settings: Any) -> None:
    """Every operation name gets its label: earlier tests of this process may have used up the cap."""
    settings.GRAPHQL_METRICS_MAX_OPERATIONS = 10**9


# -- the endpoint ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_serves_every_family_of_the_design() -> None:
    families = scrape().family_names()

    assert {
        "api_requests",
        "api_request_duration_seconds",
        "api_active_requests",
        "api_cache_hits",
        "api_cache_misses",
        "api_cache_errors",
        "api_rate_limit_rejections",
        "api_rate_limit_errors",
        "django_db_new_connections",
        "django_db_execute",
        "django_db_query_duration_seconds",
    } <= families, sorted(families)
    scraped = scrape()
    assert scraped.matching("api_request_duration_seconds_bucket", endpoint="/metrics", le="+Inf")
    protocol, method, endpoint, status = SCRAPE
    assert scraped.value("api_requests_total", protocol=protocol, method=method, endpoint=endpoint, status=status) >= 1


# -- labels: REST, other pages, unmatched paths -------------------------------------------------------------


@pytest.mark.django_db
def test_rest_requests_are_labelled_by_route_template_and_status(
    client_for: Callable[..., APIClient], user: Any, make_task: Any
) -> None:
    api, anonymous = client_for(user), client_for(None)
    task = make_task(owner=user)
    unknown = uuid.uuid4()
    before = scrape()

    assert api.get(f"/api/v1/tasks/{task.pk}").status_code == 200
    assert api.get(f"/api/v1/tasks/{task.pk}").status_code == 200
    assert api.get(f"/api/v1/tasks/{unknown}").status_code == 404
    assert api.get("/api/v1/tasks").status_code == 200
    assert api.post("/api/v1/tasks", {"title": "counted"}, format="json").status_code == 201
    assert api.patch(f"/api/v1/tasks/{task.pk}", {"title": "x"}, format="json").status_code == 200
    assert api.post("/api/v1/tasks", {"title": ""}, format="json").status_code == 400
    assert anonymous.get("/api/v1/tasks/me").status_code == 401
    assert Client().get("/healthz").status_code == 200
    after = scrape()

    assert requests_delta(before, after) == {
        ("rest", "GET", REST_TASK, "200"): 2,
        ("rest", "GET", REST_TASK, "404"): 1,
        ("rest", "GET", "/api/v1/tasks", "200"): 1,
        ("rest", "POST", "/api/v1/tasks", "201"): 1,
        ("rest", "PATCH", REST_TASK, "200"): 1,
        ("rest", "POST", "/api/v1/tasks", "400"): 1,
        ("rest", "GET", "/api/v1/tasks/me", "401"): 1,
        ("http", "GET", "/healthz", "200"): 1,
        SCRAPE: 1,
    }
    assert_histogram_follows(before, after)
    assert not {str(task.pk), str(unknown)} & after.label_values()


@pytest.mark.django_db
def test_a_path_no_route_matches_is_unmatched_never_the_raw_path(client: Client) -> None:
    token = uuid.uuid4().hex
    before = scrape()

    assert client.get(f"/no-such-page/{token}").status_code == 404
    assert client.post(f"/{token}", {}).status_code == 404
    assert client.get(f"/api/v1/tasks/not-a-uuid-{token}").status_code == 404  # the converter refuses it
    after = scrape()

    assert requests_delta(before, after) == {
        ("http", "GET", "unmatched", "404"): 2,
        ("http", "POST", "unmatched", "404"): 1,
        SCRAPE: 1,
    }
    assert token not in after.text


@pytest.mark.django_db
def test_a_made_up_http_method_is_counted_as_other(client: Client, user: Any) -> None:
    before = scrape()

    for _ in range(50):
        method = "X" + uuid.uuid4().hex[:10].upper()
        client.generic(method, "/api/v1/tasks", HTTP_AUTHORIZATION=graphql_bearer(user)["HTTP_AUTHORIZATION"])
        client.generic(method, "/healthz")
    after = scrape()

    assert requests_delta(before, after) == {
        ("rest", "other", "/api/v1/tasks", "405"): 50,
        ("http", "other", "/healthz", "200"): 50,
        SCRAPE: 1,
    }
    assert not any(value.startswith("X") for value in after.label_values())


# -- labels: GraphQL ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_graphql_requests_are_labelled_by_operation(client: Client, user: Any, many_operations: None) -> None:
    headers = graphql_bearer(user)
    before = scrape()

    assert gql(client, "query TaskList { tasks { edges { node { id } } } }", **headers).status_code == 200
    assert gql(client, "query TaskList { tasks(first: 1) { edges { node { title } } } }", **headers).status_code == 200
    assert gql(client, 'mutation CreateTask { createTask(input: {title: "a"}) { id } }', **headers).status_code == 200
    assert gql(client, "{ me { id } }", **headers).status_code == 200
    assert gql(client, 'mutation { createTask(input: {title: "b"}) { id } }', **headers).status_code == 200
    assert gql(client, "query {", **headers).status_code == 200  # does not parse
    assert gql(client, "{ me { id", **headers).status_code == 200  # does not parse either
    assert gql(client, "query " + "N" * 65 + " { me { id } }", **headers).status_code == 200  # name too long
    # Two operations and no operationName: refused before any runs (docs/api/graphql.md, "Requests").
    assert gql(client, "query A { me { id } } query B { me { id } }", **headers).status_code == 200
    assert client.get("/graphql/", {"query": "query TaskList { me { id } }"}, **headers).status_code == 200
    # An operationName the document does not have: strawberry refuses it before any operation is
    # chosen, so there is no operation to name: "invalid".
    unknown = {"query": "query TaskList { me { id } }", "operationName": "Nope"}
    assert client.post("/graphql/", unknown, content_type="application/json", **headers).status_code == 400
    after = scrape()

    assert requests_delta(before, after) == {
        ("graphql", "POST", "query TaskList", "200"): 2,
        ("graphql", "GET", "query TaskList", "200"): 1,
        ("graphql", "POST", "mutation CreateTask", "200"): 1,
        ("graphql", "POST", "query anonymous", "200"): 1,
        ("graphql", "POST", "mutation anonymous", "200"): 1,
        ("graphql", "POST", "invalid", "200"): 3,
        ("graphql", "POST", "query other", "200"): 1,
        ("graphql", "POST", "invalid", "400"): 1,
        SCRAPE: 1,
    }
    assert_histogram_follows(before, after)
    assert Task.objects.filter(owner=user).count() == 2


@pytest.mark.django_db
def test_graphql_operation_names_past_the_cap_are_counted_as_other(
    client: Client, user: Any, settings: Any, many_operations: None
) -> None:
    headers = graphql_bearer(user)
    seen = "Seen" + uuid.uuid4().hex
    assert gql(client, f"query {seen} {{ me {{ id }} }}", **headers).status_code == 200  # labelled by name
    settings.GRAPHQL_METRICS_MAX_OPERATIONS = 0  # no name that is not labelled yet gets a label of its own
    before = scrape()

    for _ in range(200):
        gql(client, f"query Fresh{uuid.uuid4().hex} {{ me {{ id }} }}", **headers)
    gql(client, f'mutation Fresh{uuid.uuid4().hex} {{ deleteTask(id: "{uuid.uuid4()}") }}', **headers)
    gql(client, f"query {seen} {{ me {{ id }} }}", **headers)
    after = scrape()

    assert requests_delta(before, after) == {
        ("graphql", "POST", "query other", "200"): 200,
        ("graphql", "POST", "mutation other", "200"): 1,
        ("graphql", "POST", f"query {seen}", "200"): 1,
        SCRAPE: 1,
    }
    assert not any(value.startswith("query Fresh") for value in after.label_values())


# -- labels: gRPC ----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_grpc_calls_are_labelled_by_method_and_status_code_name(stub: Any, user: Any, make_task: Any) -> None:
    metadata = grpc_bearer(user)
    task = make_task(owner=user)
    before = scrape()

    ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), metadata)
    ok(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), metadata)
    fails(stub.GetTask, pb.GetTaskRequest(id=str(uuid.uuid4())), metadata, code=grpc.StatusCode.NOT_FOUND)
    fails(stub.GetTask, pb.GetTaskRequest(id=str(task.pk)), code=grpc.StatusCode.UNAUTHENTICATED)
    fails(stub.CreateTask, pb.CreateTaskRequest(title=""), metadata, code=grpc.StatusCode.INVALID_ARGUMENT)
    ok(stub.CreateTask, pb.CreateTaskRequest(title="counted"), metadata)
    ok(stub.ListTasks, pb.ListTasksRequest(), metadata)
    after = scrape()

    assert requests_delta(before, after) == {
        ("grpc", "POST", GET_TASK, "OK"): 2,
        ("grpc", "POST", GET_TASK, "NOT_FOUND"): 1,
        ("grpc", "POST", GET_TASK, "UNAUTHENTICATED"): 1,
        ("grpc", "POST", SERVICE + "CreateTask", "INVALID_ARGUMENT"): 1,
        ("grpc", "POST", SERVICE + "CreateTask", "OK"): 1,
        ("grpc", "POST", SERVICE + "ListTasks", "OK"): 1,
        SCRAPE: 1,
    }
    assert_histogram_follows(before, after)
    assert str(task.pk) not in after.text


# -- bounded series: 1,000 distinct ids on each protocol ---------------------------------------------------------


def assert_series_do_not_grow(before: Scrape, after: Scrape, key: tuple[str, str, str, str]) -> None:
    for family in ("api_requests", "api_request_duration_seconds"):
        assert after.series(family) == before.series(family), family
    assert after.series() == before.series(), "some family grew a series"
    assert requests_delta(before, after) == {key: DISTINCT_IDS, SCRAPE: 1}
    assert_histogram_follows(before, after)


def warmed_up(call: Callable[[], Any]) -> Scrape:
    """Make the series of `call` and of a scrape exist, then scrape: the reading to compare with."""
    call()
    scrape()
    return scrape()


@pytest.mark.django_db
def test_a_thousand_task_ids_over_rest_make_no_new_series(client_for: Callable[..., APIClient], user: Any) -> None:
    api = client_for(user)
    before = warmed_up(lambda: api.get(f"/api/v1/tasks/{uuid.uuid4()}"))

    for _ in range(DISTINCT_IDS):
        assert api.get(f"/api/v1/tasks/{uuid.uuid4()}").status_code == 404

    assert_series_do_not_grow(before, scrape(), ("rest", "GET", REST_TASK, "404"))


@pytest.mark.django_db
def test_a_thousand_task_ids_over_graphql_make_no_new_series(client: Client, user: Any, many_operations: None) -> None:
    headers = graphql_bearer(user)

    def get_task() -> Any:
        return gql(client, f'query TaskById {{ task(id: "{uuid.uuid4()}") {{ id }} }}', **headers)

    before = warmed_up(get_task)

    for _ in range(DISTINCT_IDS):
        response = get_task()
        assert response.status_code == 200 and response.json()["data"] == {"task": None}

    assert_series_do_not_grow(before, scrape(), ("graphql", "POST", "query TaskById", "200"))


@pytest.mark.django_db(transaction=True)
def test_a_thousand_task_ids_over_grpc_make_no_new_series(stub: Any, user: Any) -> None:
    metadata = grpc_bearer(user)

    def get_task() -> Any:
        return stub.GetTask.future(pb.GetTaskRequest(id=str(uuid.uuid4())), metadata=metadata, timeout=30)

    before = warmed_up(lambda: get_task().exception())

    for _ in range(DISTINCT_IDS // 50):  # 50 calls in flight at a time (GRPC_MAX_CONCURRENT_RPCS is 64)
        futures = [get_task() for _ in range(50)]
        assert {future.exception().code() for future in futures} == {grpc.StatusCode.NOT_FOUND}

    assert_series_do_not_grow(before, scrape(), ("grpc", "POST", GET_TASK, "NOT_FOUND"))


# -- api_active_requests ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("protocol", ["rest", "graphql", "grpc"])
def test_a_request_in_flight_is_active_until_it_is_answered(
    protocol: str, user: Any, make_task: Any, request: pytest.FixtureRequest
) -> None:
    task = make_task(owner=user, title="Before")
    if protocol == "grpc":
        stub = request.getfixturevalue("stub")
        metadata = grpc_bearer(user)
        update = pb.UpdateTaskRequest(
            id=str(task.pk), task=pb.Task(title="After"), update_mask=FieldMask(paths=["title"])
        )

        def send() -> Any:
            return ok(stub.UpdateTask, update, metadata).task.title
    elif protocol == "rest":
        api = request.getfixturevalue("client_for")(user)

        def send() -> Any:
            response = api.patch(f"/api/v1/tasks/{task.pk}", {"title": "After"}, format="json")
            assert response.status_code == 200, response.content
            return response.json()["title"]
    else:
        headers = graphql_bearer(user)
        mutation = f'mutation Rename {{ updateTask(id: "{task.pk}", input: {{title: "After"}}) {{ title }} }}'

        def send() -> Any:
            return gql(Client(), mutation, **headers).json()["data"]["updateTask"]["title"]

    result: list[Any] = []

    def in_thread() -> None:
        try:
            result.append(send())
        finally:
            connections.close_all()  # this thread's own database connection

    before = scrape().active()
    with row_locked(task.pk):
        worker = threading.Thread(target=in_thread)
        worker.start()
        # In flight (held up by the lock): one more, until it is answered.
        during = wait_until(lambda: scrape().active().get(protocol, 0) == before.get(protocol, 0) + 1, 5)
        waiting = a_call_waits_on_a_lock()
    worker.join(10)
    after = scrape().active()

    assert during and waiting
    assert result == ["After"]
    assert after.get(protocol) == before.get(protocol, 0)
    assert before["http"] == after["http"] == 1  # the scrape itself


# -- cache and rate-limit counters -----------------------------------------------------------------------------


def cache_counts(scraped: Scrape) -> tuple[float, float, float]:
    """api_cache_hits_total, api_cache_misses_total, api_cache_errors_total."""
    return (
        scraped.value("api_cache_hits_total"),
        scraped.value("api_cache_misses_total"),
        scraped.value("api_cache_errors_total"),
    )


@pytest.mark.django_db
def test_a_cached_get_moves_the_hit_and_miss_counters(
    client_for: Callable[..., APIClient], user: Any, make_task: Any
) -> None:
    api = client_for(user)
    task = make_task(owner=user)
    url = f"/api/v1/tasks/{task.pk}"

    first = scrape()
    assert api.get(url).status_code == 200  # not cached yet: a miss, then the row is stored
    second = scrape()
    assert api.get(url).status_code == 200  # served from the cache
    third = scrape()

    hits_1, misses_1, errors_1 = (b - a for a, b in zip(cache_counts(first), cache_counts(second), strict=True))
    hits_2, misses_2, errors_2 = (b - a for a, b in zip(cache_counts(second), cache_counts(third), strict=True))
    assert (hits_1, errors_1) == (0, 0) and misses_1 >= 1
    assert (hits_2, misses_2, errors_2) == (1, 0, 0)


@pytest.mark.django_db
def test_a_cache_fault_is_counted_and_the_request_still_served(
    client_for: Callable[..., APIClient], user: Any, make_task: Any
) -> None:
    api = client_for(user)
    task = make_task(owner=user)
    before = scrape()

    with override_settings(CACHES=DEAD_REDIS, CACHE_RETRY_AFTER=30):
        assert api.get(f"/api/v1/tasks/{task.pk}").status_code == 200
        assert api.get(f"/api/v1/tasks/{task.pk}").status_code == 200  # the cache is skipped meanwhile
    after = scrape()

    hits, misses, errors = (b - a for a, b in zip(cache_counts(before), cache_counts(after), strict=True))
    assert (hits, misses, errors) == (0, 0, 1)
    assert requests_delta(before, after) == {("rest", "GET", REST_TASK, "200"): 2, SCRAPE: 1}


@pytest.mark.django_db(transaction=True)
def test_rate_limit_rejections_are_counted_per_scope_on_every_protocol(
    client_for: Callable[..., APIClient], user: Any, settings: Any, stub: Any
) -> None:
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {"anon": ["2/h"], "user": ["2/h"], "token": ["1000/h"], "login_user": ["1000/h"]}
    api = client_for(user)
    rejected = "api_rate_limit_rejections_total"
    before = scrape()

    assert [api.get("/api/v1/tasks").status_code for _ in range(3)] == [200, 200, 429]
    assert gql(Client(), "{ me { id } }", **graphql_bearer(user)).status_code == 429  # same user, same windows
    fails(stub.ListTasks, pb.ListTasksRequest(), grpc_bearer(user), code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    anonymous = client_for(None)
    assert [anonymous.get("/api/v1/tasks").status_code for _ in range(3)] == [401, 401, 429]
    after = scrape()

    assert after.value(rejected, scope="user") - before.value(rejected, scope="user") == 3
    assert after.value(rejected, scope="anon") - before.value(rejected, scope="anon") == 1
    assert requests_delta(before, after) == {
        ("rest", "GET", "/api/v1/tasks", "200"): 2,
        ("rest", "GET", "/api/v1/tasks", "429"): 2,
        ("rest", "GET", "/api/v1/tasks", "401"): 2,
        # Refused before the document is read: no operation to name, so the route.
        ("graphql", "POST", "/graphql/", "429"): 1,
        ("grpc", "POST", SERVICE + "ListTasks", "RESOURCE_EXHAUSTED"): 1,
        SCRAPE: 1,
    }


# -- adders: increments without their per-call checks -----------------------------------------------------------


def test_an_adder_adds_to_the_value_the_metric_reports() -> None:
    registry = CollectorRegistry()
    counter = Counter("adder_counted", "A counter.", ["kind"], registry=registry)
    gauge = Gauge("adder_gauged", "A gauge.", registry=registry)

    add = metrics.adder(counter.labels("a"))
    add(1)
    add(1)
    metrics.adder(gauge)(1)
    metrics.adder(gauge)(-1)
    metrics.adder(gauge)(1)

    assert registry.get_sample_value("adder_counted_total", {"kind": "a"}) == 2
    assert registry.get_sample_value("adder_gauged") == 1


def test_an_adder_refuses_what_inc_refuses() -> None:
    registry = CollectorRegistry()
    labelled = Counter("adder_parent", "A counter with labels.", ["kind"], registry=registry)
    latest = Gauge(
        "adder_latest", "A gauge that keeps its latest value.", multiprocess_mode="mostrecent", registry=registry
    )

    with pytest.raises(ValueError, match="missing label values"):
        metrics.adder(labelled)  # its children count, not the parent
    with pytest.raises(RuntimeError, match="mostrecent"):
        metrics.adder(latest)


def test_label_adders_are_remembered_per_label_values() -> None:
    registry = CollectorRegistry()
    counter = Counter("adder_remembered", "A counter.", ["kind"], registry=registry)

    assert metrics.label_adder(counter, "a") is metrics.label_adder(counter, "a")
    metrics.label_adder(counter, "a")(1)
    metrics.label_adder(counter, "b")(1)
    metrics.label_adder(counter, "b")(1)

    assert registry.get_sample_value("adder_remembered_total", {"kind": "a"}) == 1
    assert registry.get_sample_value("adder_remembered_total", {"kind": "b"}) == 2


def test_an_observer_counts_as_observe_does() -> None:
    """The same buckets, sum and count as Histogram.observe, bounds themselves included."""
    registry = CollectorRegistry()
    buckets = (0.001, 0.01, 0.1, 1.0)
    observed = Histogram("observer_observed", "A histogram.", ["kind"], buckets=buckets, registry=registry)
    expected = Histogram("observer_expected", "A histogram.", ["kind"], buckets=buckets, registry=registry)

    observe = metrics.observer(observed.labels("a"))
    for amount in (0.0, 0.0005, 0.001, 0.0011, 0.01, 0.5, 1.0, 7.0, float("inf"), -1.0):
        observe(amount)
        expected.labels("a").observe(amount)

    def samples(name: str) -> list[tuple[str, dict[str, str], float]]:
        return [
            (sample.name.removeprefix(name), sample.labels, sample.value)
            for family in registry.collect()
            if family.name == name
            for sample in family.samples
            if not sample.name.endswith("_created")
        ]

    assert samples("observer_observed") == samples("observer_expected")
    assert registry.get_sample_value("observer_observed_count", {"kind": "a"}) == 10


def test_an_observer_refuses_what_observe_refuses() -> None:
    labelled = Histogram("observer_parent", "A histogram with labels.", ["kind"], registry=CollectorRegistry())

    with pytest.raises(ValueError, match="missing label values"):
        metrics.observer(labelled)  # its children observe, not the parent


def test_label_observers_are_remembered_per_label_values() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("observer_remembered", "A histogram.", ["kind"], registry=registry)

    assert metrics.label_observer(histogram, "a") is metrics.label_observer(histogram, "a")
    metrics.label_observer(histogram, "a")(0.2)
    metrics.label_observer(histogram, "b")(0.2)
    metrics.label_observer(histogram, "b")(0.3)

    assert registry.get_sample_value("observer_remembered_count", {"kind": "a"}) == 1
    assert registry.get_sample_value("observer_remembered_sum", {"kind": "b"}) == pytest.approx(0.5)


def test_metrics_follow_a_change_of_metrics_enabled(settings: Any) -> None:
    """METRICS_ENABLED is kept once read (every request asks), and read again when it changes."""
    before = metrics.REQUESTS.labels("test", "GET", "/kept", "200")._value.get()
    settings.METRICS_ENABLED = False
    assert not metrics.enabled()
    with metrics.observe_request("test", "GET", "/kept") as observation:
        observation.status = "200"
    settings.METRICS_ENABLED = True
    assert metrics.enabled()
    with metrics.observe_request("test", "GET", "/kept") as observation:
        observation.status = "200"

    assert metrics.REQUESTS.labels("test", "GET", "/kept", "200")._value.get() == before + 1


# -- django-prometheus ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_database_metrics_of_django_prometheus_move(
    client_for: Callable[..., APIClient], user: Any, on_postgres: bool
) -> None:
    vendor = "postgresql" if on_postgres else "sqlite"
    before = scrape()

    assert client_for(user).post("/api/v1/tasks", {"title": "a query or two"}, format="json").status_code == 201
    after = scrape()

    executed = "django_db_execute_total"
    assert after.value(executed, alias="default", vendor=vendor) > before.value(
        executed, alias="default", vendor=vendor
    )
    assert after.matching("django_db_query_duration_seconds_count", alias="default", vendor=vendor)


@pytest.mark.redis
@pytest.mark.django_db
def test_cache_metrics_of_django_prometheus_move_on_redis(
    client_for: Callable[..., APIClient], user: Any, make_task: Any
) -> None:
    api = client_for(user)
    url = f"/api/v1/tasks/{make_task(owner=user).pk}"
    api.get(url)
    before = scrape()

    assert api.get(url).status_code == 200  # a hit
    after = scrape()

    for name in ("django_cache_get_total", "django_cache_get_hits_total"):
        assert after.value(name, backend="redis") - before.value(name, backend="redis") == 1, name


def test_a_scrape_skips_the_file_another_process_is_still_creating(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Multiprocess mode: a process creates its file empty and sizes it a moment later; a scrape that
    comes in between must not fail (it did: `struct.error`, a 500) and still shows every other file."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    from observability import metrics

    written = MmapedDict(str(tmp_path / "counter_4242.db"))
    key = mmap_key("api_requests", "api_requests_total", ["protocol"], ["rest"], "Requests.")
    written.write_value(key, 3.0, 0.0)
    written.close()
    (tmp_path / "counter_4343.db").touch()  # another process, between its open() and its truncate()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    text = metrics.exposition().decode()

    assert 'api_requests_total{protocol="rest"} 3.0' in text
