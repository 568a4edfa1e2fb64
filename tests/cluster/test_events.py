"""Live events on the cluster: subscribers on every protocol through the proxy (SSE and GraphQL websockets on
:8080, routed to the events replicas; WatchTasks on :9090) get a change written through the proxy over REST,
whichever replica serves each; the replicas share the event log in Redis, so a subscriber on events2 gets a
write made on web1; a subscriber whose events replica was stopped resumes through the proxy with Last-Event-ID
and gets the event it missed, once; and a replica stopped with SIGTERM ends its streams with the retryable end
event instead of cutting them.

Every test writes the tasks of a user of its own (an API key each), so a stream receives only what the test
wrote, and events are matched by task id.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from functools import partial

import pytest

from tests.cluster import cluster
from tests.cluster.streams import GraphqlSubscription, SseClient, SseEvent, WatchTasks, create_task, mentions

SUBSCRIBERS = 4  # per protocol through the proxy: round robin puts some on each replica
DELIVERY = 10.0  # seconds an event may take to arrive (the target is 0.1 s; the machine is loaded)
STOP_GRACE = 30  # podman stop --time: the kill comes only after this
SHUTDOWN_GRACE = 10  # EVENTS_SHUTDOWN_GRACE of the compose file
STREAMS_ACTIVE = "api_event_streams_active"


@pytest.fixture(scope="module")
def keys() -> Iterator[str]:
    """API keys of new users, one per test that takes `api_key`."""
    return iter(cluster.api_keys(8))


@pytest.fixture
def api_key(keys: Iterator[str]) -> str:
    return next(keys)


@pytest.fixture(autouse=True)
def events_replicas_running() -> Iterator[None]:
    """Whatever a test stopped, the next one starts with both events replicas up and healthy."""
    yield
    for service in cluster.EVENTS_REPLICAS:
        name = cluster.container(service)
        if cluster.podman("inspect", "--format", "{{.State.Status}}", name).strip() != "running":
            cluster.podman("start", name)
        assert cluster.wait_for(partial(healthy, name), timeout=60) is not None, service


def healthy(container: str) -> bool:
    return (
        subprocess.run(
            ["podman", "healthcheck", "run", container], env=cluster.command_env(), capture_output=True, check=False
        ).returncode
        == 0
    )


def streams_on(service: str, protocol: str = "rest") -> float:
    return cluster.replica_metric(service, STREAMS_ACTIVE, protocol=protocol)


def events_of(client: SseClient, task_id: str) -> list[SseEvent]:
    return [
        event for event in client.received.drain(settle=1.0) if isinstance(event, SseEvent) and task_id in event.data
    ]


# -- through the proxy, on every protocol -----------------------------------------------------------------------


def test_sse_through_the_proxy_gets_a_rest_write_whichever_replica_serves_it(base_url: str, api_key: str) -> None:
    before = {service: streams_on(service) for service in cluster.EVENTS_REPLICAS}
    clients = [SseClient(base_url, api_key) for _ in range(SUBSCRIBERS)]
    try:
        for client in clients:
            assert client.status == 200
            assert client.content_type.startswith("text/event-stream")
        # Both replicas serve some of them (the proxy takes turns).
        assert cluster.wait_for(
            lambda: all(streams_on(service) > before[service] for service in cluster.EVENTS_REPLICAS), timeout=10
        ), {service: streams_on(service) for service in cluster.EVENTS_REPLICAS}
        task = create_task(base_url, api_key)
        for client in clients:
            event = client.received.wait_for(mentions(task["id"]), timeout=DELIVERY)
            assert event.id and event.event == "created", event
        for client in clients:
            assert len(events_of(client, task["id"])) == 1
    finally:
        for client in clients:
            client.close()


def test_graphql_subscriptions_through_the_proxy_get_a_rest_write(base_url: str, api_key: str) -> None:
    before = {service: streams_on(service, "graphql") for service in cluster.EVENTS_REPLICAS}
    subscriptions = [GraphqlSubscription(base_url, api_key) for _ in range(SUBSCRIBERS)]
    try:
        # The subscriptions have started (`subscribe` is not acknowledged), on both replicas.
        assert cluster.wait_for(
            lambda: all(streams_on(service, "graphql") > before[service] for service in cluster.EVENTS_REPLICAS),
            timeout=10,
        ), {service: streams_on(service, "graphql") for service in cluster.EVENTS_REPLICAS}
        task = create_task(base_url, api_key)
        for subscription in subscriptions:
            message = subscription.received.wait_for(mentions(task["id"]), timeout=DELIVERY)
            assert '"type": "next"' in message and '"created"' in message.lower(), message
    finally:
        for subscription in subscriptions:
            subscription.close()


def test_watch_tasks_through_the_proxy_gets_a_rest_write(base_url: str, grpc_target: str, api_key: str) -> None:
    watchers = [WatchTasks(grpc_target, api_key) for _ in range(SUBSCRIBERS)]
    try:
        time.sleep(1.0)  # the calls have reached the servers (a server stream sends nothing before an event)
        task = create_task(base_url, api_key)
        for watcher in watchers:
            event = watcher.received.wait_for(mentions(task["id"]), timeout=DELIVERY)
            assert event.id, event
    finally:
        for watcher in watchers:
            watcher.close()


# -- across replicas: the event log in Redis ---------------------------------------------------------------------


def test_a_write_on_web1_reaches_a_subscriber_on_events2(api_key: str) -> None:
    with SseClient(cluster.web_url("events2"), api_key, host="localhost") as client:
        assert client.status == 200
        task = create_task(cluster.web_url("web1"), api_key, host="localhost")
        client.received.wait_for(mentions(task["id"]), timeout=DELIVERY)
        assert len(events_of(client, task["id"])) == 1


def serving_replica(before: dict[str, float]) -> str:
    """The one events replica whose count of open SSE streams went up since `before`."""
    grown: list[str] = []

    def one_grew() -> bool:
        grown[:] = [service for service in cluster.EVENTS_REPLICAS if streams_on(service) > before[service]]
        return len(grown) == 1

    assert cluster.wait_for(one_grew, timeout=10) is not None, grown
    return grown[0]


def test_resume_through_the_proxy_after_the_replica_was_stopped(base_url: str, api_key: str) -> None:
    before = {service: streams_on(service) for service in cluster.EVENTS_REPLICAS}
    with SseClient(base_url, api_key) as client:
        assert client.status == 200
        replica = serving_replica(before)
        seen = create_task(base_url, api_key)
        last = client.received.wait_for(mentions(seen["id"]), timeout=DELIVERY)
        cluster.podman("stop", "--time", str(STOP_GRACE), cluster.container(replica), timeout=STOP_GRACE + 30)
        assert client.received.ended.wait(5), "the stream outlived its replica"
    missed = create_task(base_url, api_key)
    with SseClient(base_url, api_key, last_event_id=last.id) as resumed:
        assert resumed.status == 200
        resumed.received.wait_for(mentions(missed["id"]), timeout=DELIVERY)
        assert len(events_of(resumed, missed["id"])) == 1
        assert events_of(resumed, seen["id"]) == []  # up to Last-Event-ID: not again


# -- graceful stop ------------------------------------------------------------------------------------------------


def stop(service: str) -> float:
    """`podman stop` (SIGTERM, the kill after STOP_GRACE seconds); the seconds it took."""
    started = time.monotonic()
    cluster.podman("stop", "--time", str(STOP_GRACE), cluster.container(service), timeout=STOP_GRACE + 30)
    return time.monotonic() - started


def test_a_stopped_replica_ends_its_sse_streams_with_the_retryable_end_event(api_key: str) -> None:
    with SseClient(cluster.web_url("events1"), api_key, host="localhost") as client:
        assert client.status == 200
        stopped_in = stop("events1")
        end = client.received.wait_for(lambda item: isinstance(item, SseEvent) and item.event == "end", timeout=5)
        assert end.json()["code"] == "unavailable", end
        assert client.received.ended.wait(5), "the stream stayed open after its end event"
    # A graceful exit within the grace period, not the kill at the end of the stop timeout.
    assert stopped_in < SHUTDOWN_GRACE + 5, f"events1 took {stopped_in:.1f} s to stop"
    print(f"\nevents1 with an open SSE stream stopped in {stopped_in:.1f} s")


def test_a_stopped_replica_closes_its_websockets_with_a_close_frame(api_key: str) -> None:
    """The subscription ends with its retryable error (UNAVAILABLE), then the connection with a close frame
    (uvicorn's 1012, service restart), not a cut."""
    with GraphqlSubscription(cluster.web_url("events2"), api_key, host="localhost") as subscription:
        time.sleep(1.0)  # the subscription has started
        stopped_in = stop("events2")
        assert subscription.received.ended.wait(5), "the websocket outlived its replica"
    assert subscription.close_code not in (None, 1006), subscription.close_code
    messages = subscription.received.drain()
    assert any("UNAVAILABLE" in message for message in messages), messages
    assert stopped_in < SHUTDOWN_GRACE + 5, f"events2 took {stopped_in:.1f} s to stop"
    print(f"\nevents2 with an open websocket stopped in {stopped_in:.1f} s")
