"""The instance event stream over SSE (httpx): replay with ?after= and Last-Event-ID across reconnects, live
events, refusals; and the relay losing nothing when the after-commit listener never ran (the sweeps)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from apps.realtime.relay_loop import on_events_committed
from apps.workflows import outbox
from tests.celery_worker import wait_until

from .conftest import committed, fire, new_instance, record

pytestmark = pytest.mark.django_db


def stream_url(world, instance_id):
    return f"{world['server'].url}/api/workflow-instances/{instance_id}/events/stream"


def read_events(lines, n, timeout=15.0):
    """The next `n` events from an SSE response's line iterator: (id, payload)."""
    events, current = [], {}
    deadline = time.monotonic() + timeout
    for line in lines:
        if time.monotonic() > deadline:
            break
        if line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and current:
            events.append((current["id"], current["data"]))
            current = {}
            if len(events) == n:
                return events
    raise AssertionError(f"got {events} before the deadline")


def headers(secret, **extra):
    return {"Authorization": f"Bearer {secret}", **extra}


def test_replay_live_and_reconnect_with_last_event_id_miss_nothing(world):
    instance, token = new_instance(world["tenant"])
    url = stream_url(world, instance.id)
    with httpx.Client(timeout=httpx.Timeout(20, read=20)) as client:
        with client.stream("GET", url, params={"after": 0}, headers=headers(world["secret"])) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            assert next(lines) == "retry: 2000"
            first = read_events(lines, 2)
            fire(world["tenant"], token, "submit")
            live = read_events(lines, 1)
        missed = [record(world["tenant"], instance, token, "agent_content", n=n).id for n in range(3)]
        last_seen = live[-1][0]
        with client.stream("GET", url, headers=headers(world["secret"], **{"Last-Event-ID": str(last_seen)})) as again:
            resumed = read_events(again.iter_lines(), 3)
    assert [data["eventType"] for _, data in first] == ["instance_created", "token_created"]
    assert live[0][1]["eventType"] == "transition_fired" and live[0][1]["id"] == live[0][0]
    assert [event_id for event_id, _ in resumed] == missed
    assert [data["data"]["n"] for _, data in resumed] == [0, 1, 2]


def test_sse_refusals_in_the_apis_shape(world):
    instance, _ = new_instance(world["tenant"])
    url = stream_url(world, instance.id)
    foreign = httpx.get(url, headers=headers(world["other_secret"]), timeout=10)
    missing = httpx.get(stream_url(world, "4a3c0000-0000-4000-8000-000000000000"),
                        headers=headers(world["secret"]), timeout=10)
    malformed = httpx.get(stream_url(world, "nope"), headers=headers(world["secret"]), timeout=10)
    anonymous = httpx.get(url, timeout=10)
    bad_cursor = httpx.get(url, params={"after": "x"}, headers=headers(world["secret"]), timeout=10)
    post = httpx.post(url, headers=headers(world["secret"]), timeout=10)
    assert foreign.status_code == missing.status_code == malformed.status_code == 404
    assert foreign.json() == missing.json() | {"detail": foreign.json()["detail"]}
    assert foreign.json()["code"] == "not_found"
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "missing_api_key"
    assert bad_cursor.status_code == 400 and "after" in bad_cursor.json()
    assert post.status_code == 405


@pytest.fixture
def listener_skipped():
    """As if the process that committed died before its after-commit listener ran."""
    outbox.unregister_listener(on_events_committed)
    yield
    outbox.register_listener(on_events_committed)


def test_events_whose_listener_never_ran_are_published_by_the_sweep(world, listener_skipped):
    from apps.workflows.models import WorkflowEvent

    instance, token = new_instance(world["tenant"])
    url = stream_url(world, instance.id)
    with httpx.Client(timeout=httpx.Timeout(20, read=20)) as client, \
            client.stream("GET", url, headers=headers(world["secret"])) as response:
        time.sleep(0.3)
        written = [record(world["tenant"], instance, token, "agent_content", n=n).id for n in range(3)]
        lines = response.iter_lines()
        got = []
        while not set(written) <= {event_id for event_id, _ in got}:
            got += read_events(lines, 1)  # the server's sweep (0.5 s here) found them
    # The instance's own creation events had no listener either: they come first, as they committed, unless
    # the sweep published them before this stream subscribed (a live stream starts at its subscription).
    assert [data["eventType"] for _, data in got[:-3]] in (["instance_created", "token_created"], [])
    assert [event_id for event_id, _ in got[-3:]] == written
    # Sends precede the batch's commit (a row is marked published only once its groups have it).
    assert wait_until(lambda: committed(
        lambda: WorkflowEvent.objects.filter(id__in=written, published_at__isnull=True).count()) == 0)


def test_the_beat_task_publishes_what_no_listener_did(world, listener_skipped):
    from apps.realtime.models import PublishedEvent
    from apps.realtime.tasks import relay_events

    instance, token = new_instance(world["tenant"])
    event = record(world["tenant"], instance, token, "agent_thinking")
    committed(relay_events)  # the task body, as the beat runs it (the server's sweep may win the race)
    assert committed(lambda: PublishedEvent.objects.filter(event_id=event.id).count()) == 1
