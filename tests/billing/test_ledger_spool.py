"""The web host's spool: what a dead process left is delivered by the next one (once, idempotently), a line
torn by a crash is skipped, and a live process's file is left to its owner."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import orjson
import pytest
import redis.asyncio as aioredis
from django.conf import settings

from apps.billing.ingest import ingest_once
from apps.billing.ledger import LedgerWriter
from apps.billing.ledger_spool import LedgerSpool
from apps.billing.ledger_stream import INFLIGHT, STREAM
from apps.billing.models import UsageRecord
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def record(request_id: str, tenant) -> bytes:
    return orjson.dumps({"request_id": request_id, "created_at": time.time(), "tenant_id": tenant.id,
                         "endpoint": "chat", "status": 200, "cost": "0.001"})


def test_a_dead_processs_spool_is_delivered_by_the_next_one(tmp_path, redis_client):
    tenant = factories.tenant()
    host = socket.gethostname().replace("-", "_")
    left = tmp_path / f"ledger-{host}-{dead_pid()}-0.jsonl"
    marker = orjson.dumps({"request_id": "s-2", "created_at": time.time(), "tenant_id": tenant.id, "cost": "1"})
    left.write_bytes(b"e " + record("s-1", tenant) + b"\nb " + marker + b"\ne " + record("s-2", tenant)
                     + b"\nb " + marker[:20])  # the last line was cut short by the crash
    live = tmp_path / f"ledger-{host}-{os.getppid()}-0.jsonl"  # a live process's file: not ours to send
    live.write_bytes(b"e " + record("s-3", tenant) + b"\n")

    async def deliver():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        writer = LedgerWriter(client, spool=LedgerSpool(tmp_path))
        try:
            return await writer.deliver_spool()
        finally:
            await writer.close()
            await client.aclose()

    assert asyncio.run(deliver())
    assert not left.exists() and live.exists()
    assert redis_client.xlen(STREAM) == 2
    assert not redis_client.hexists(INFLIGHT, "s-2")  # its record came with it: no marker resurrected
    while ingest_once():
        pass
    assert sorted(UsageRecord.objects.filter(tenant=tenant).values_list("request_id", flat=True)) == ["s-1", "s-2"]
