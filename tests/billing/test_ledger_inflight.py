"""In-flight markers (`LedgerWriter.begin`) and their reconciliation against real Redis and Postgres: a request
a killed process never finished is billed once at its estimated cost, flagged; a finished one is not billed
twice; a real record that arrives late replaces the estimate."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from apps.billing.ingest import ingest_once
from apps.billing.ledger import LedgerWriter
from apps.billing.ledger_stream import INFLIGHT, INFLIGHT_LOST, INFLIGHT_STARTED
from apps.billing.models import UsageRecord
from apps.billing.tasks import reconcile_inflight
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
LONG_AGO = time.time() - 24 * 3600


def entry(request_id: str, tenant, **fields) -> dict:
    return {"request_id": request_id, "created_at": time.time(), "tenant_id": tenant.id, "endpoint": "chat",
            "provider": "openai", "model_requested": "gpt-4o", "model_served": "gpt-4o", "prompt_tokens": 10,
            "completion_tokens": 5, "cost": "0.000075", "latency_ms": 12.5, "status": 200, **fields}


def write(scenario):
    async def main():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        writer = LedgerWriter(client)
        try:
            await scenario(writer)
        finally:
            await writer.close()
            await client.aclose()

    asyncio.run(main())


def drain() -> None:
    while ingest_once():
        pass


def test_a_marker_without_a_record_is_billed_once_at_its_estimate(redis_client):
    tenant = factories.tenant()

    async def scenario(writer):
        await writer.begin("lost-1", tenant_id=tenant.id, model_requested="gpt-4o", model_served="gpt-4o",
                           provider="openai", estimated_cost=D("0.25"), prompt_tokens=1200, user_label="alice",
                           created_at=LONG_AGO)
        await writer.begin("done-1", tenant_id=tenant.id, model_requested="gpt-4o", estimated_cost=D("0.25"),
                           created_at=LONG_AGO)
        await writer.append(entry("done-1", tenant))
        await writer.begin("young-1", tenant_id=tenant.id, model_requested="gpt-4o", estimated_cost=D(1))

    write(scenario)
    assert redis_client.hexists(INFLIGHT, "lost-1") and not redis_client.hexists(INFLIGHT, "done-1")
    drain()
    assert reconcile_inflight.apply().get() == 1  # the Celery task, run as a worker runs it
    lost = UsageRecord.objects.get(request_id="lost-1")
    assert (lost.cost, lost.usage_estimated, lost.error_type, lost.status) == (D("0.25"), True, INFLIGHT_LOST, 502)
    assert (lost.tenant_id, lost.prompt_tokens, lost.user_label, lost.model_requested) == (
        tenant.id, 1200, "alice", "gpt-4o")
    done = UsageRecord.objects.get(request_id="done-1")
    assert not done.usage_estimated and done.cost == D("0.000075")
    assert not UsageRecord.objects.filter(request_id="young-1").exists()  # still within its deadline
    assert redis_client.hexists(INFLIGHT, "young-1") and redis_client.zscore(INFLIGHT_STARTED, "young-1")
    assert not redis_client.hexists(INFLIGHT, "lost-1")

    assert reconcile_inflight.apply().get() == 0  # twice: still one record each
    assert UsageRecord.objects.filter(request_id__in=["lost-1", "done-1"]).count() == 2


def test_a_marker_whose_record_is_already_in_the_ledger_adds_nothing(redis_client):
    tenant = factories.tenant()
    UsageRecord.objects.create(request_id="seen-1", created_at="2026-01-01T00:00:00Z", tenant=tenant,
                               endpoint="chat", status=200, cost=D("0.1"))

    async def scenario(writer):
        await writer.begin("seen-1", tenant_id=tenant.id, estimated_cost=D(5), created_at=LONG_AGO)

    write(scenario)
    assert reconcile_inflight.apply().get() == 0
    assert UsageRecord.objects.get(request_id="seen-1").cost == D("0.1")
    assert not redis_client.hexists(INFLIGHT, "seen-1")


def test_a_late_real_record_replaces_the_estimate():
    tenant = factories.tenant()

    async def begin(writer):
        await writer.begin("slow-1", tenant_id=tenant.id, estimated_cost=D("0.5"), created_at=LONG_AGO)

    write(begin)
    assert reconcile_inflight.apply().get() == 1

    async def finish(writer):
        await writer.append(entry("slow-1", tenant, cost="0.0123"))

    write(finish)
    drain()
    row = UsageRecord.objects.get(request_id="slow-1")
    assert (row.cost, row.usage_estimated, row.error_type, row.status) == (D("0.0123"), False, "", 200)
