"""Relayed events reach NATS JetStream (the local server) on the original's subjects, with `Nats-Msg-Id`
= the event id, and a re-sent batch is dropped by the stream's de-duplication."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest

from tests.conftest import ServerProcess, committed

from .conftest import fire, new_instance

pytestmark = pytest.mark.django_db

NATS_URL = "nats://127.0.0.1:4222"


@pytest.fixture
def nats_server(world):
    suffix = uuid.uuid4().hex[:8]
    names = {"stream": f"CBTEST_{suffix}", "prefix": f"cbtest{suffix}"}
    server = ServerProcess(env={"NATS_URL": NATS_URL, "NATS_STREAM": names["stream"],
                                "NATS_SUBJECT_PREFIX": names["prefix"], "REALTIME_RELAY_SWEEP_SECONDS": "0.3"})
    server.start()
    yield names
    server.stop()

    async def drop():
        client = await nats.connect(NATS_URL)
        try:
            await client.jetstream().delete_stream(names["stream"])
        finally:
            await client.close()

    asyncio.run(drop())


async def consume(names, subject_filter, n, timeout=20.0):
    client = await nats.connect(NATS_URL)
    try:
        js = client.jetstream()
        for _ in range(int(timeout * 10)):  # the web process creates the stream on its first batch
            try:
                await js.stream_info(names["stream"])
                break
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.1)
        subscription = await js.pull_subscribe(subject_filter, stream=names["stream"])
        got = []
        while len(got) < n:
            for message in await subscription.fetch(n - len(got), timeout=timeout):
                await message.ack()
                got.append(message)
        info = await js.stream_info(names["stream"])
        return got, info.state.messages
    finally:
        await client.close()


def test_events_are_published_to_jetstream_on_the_originals_subjects(world, nats_server):
    import json

    from apps.realtime.models import PublishedEvent, RelayCursor

    tenant = world["tenant"]
    instance, token = new_instance(tenant)
    fire(tenant, token, "submit")
    prefix = nats_server["prefix"]
    token_subjects = f"{prefix}.{tenant.id}.workflows.document_review.places.*.tokens.{token.id}"
    got, _ = asyncio.run(consume(nats_server, token_subjects, 2))
    assert [m.subject for m in got] == [
        f"{prefix}.{tenant.id}.workflows.document_review.places.draft.tokens.{token.id}",
        f"{prefix}.{tenant.id}.workflows.document_review.places.pending_review.tokens.{token.id}"]
    bodies = [json.loads(m.data) for m in got]
    assert [b["eventType"] for b in bodies] == ["token_created", "transition_fired"]
    assert [m.headers["Nats-Msg-Id"] for m in got] == [str(b["id"]) for b in bodies]
    # A new stream gets the history too (earlier tests' instances): ours is among the instance_created events.
    created = f"{prefix}.{tenant.id}.workflows.document_review.events.instance_created"
    before = committed(lambda: PublishedEvent.objects.filter(event__tenant_id=tenant.id,
                                                             event__workflow="document_review",
                                                             event__type="instance_created").count())
    events, total = asyncio.run(consume(nats_server, created, before))
    assert str(instance.id) in {json.loads(m.data)["instanceId"] for m in events}

    # A forwarder that crashed after the acks re-sends from its old cursor: the stream keeps one copy each.
    committed(lambda: RelayCursor.objects.filter(name=f"nats:{nats_server['stream']}").update(seq=0))
    fire(tenant, token, "review")  # wakes the relay; the re-sent history is dropped by Nats-Msg-Id
    reviewed = f"{prefix}.{tenant.id}.workflows.document_review.places.reviewed.tokens.{token.id}"
    _, after = asyncio.run(consume(nats_server, reviewed, 1))
    assert after == total + 1  # only the new firing's event was added
