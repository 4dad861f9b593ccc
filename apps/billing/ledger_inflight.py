"""Billing requests a killed web process never finished: their `LedgerWriter.begin` markers outlive them.

`reconcile_inflight` (the periodic `billing.reconcile_inflight` task) takes markers older than the longest a
request may run plus a margin (LEDGER_INFLIGHT_GRACE_SECONDS; default the budget reservation TTL + 2 min) and,
for those without a ledger row, writes one at the marker's estimated cost, `usage_estimated` and
error_type `in_flight_lost`. Idempotent by request id; a real record that arrives later supersedes the
estimate (see `ingest.ingest_entries`).
"""

from __future__ import annotations

import logging
import time

import orjson
from django.conf import settings

from apps.core import redis as cb_redis

from .ingest import ingest_entries
from .ledger_stream import INFLIGHT, INFLIGHT_LOST, INFLIGHT_STARTED
from .models import UsageRecord

logger = logging.getLogger("apps.billing.ledger")

BATCH = 500
MARGIN_SECONDS = 120.0


def grace_seconds() -> float:
    configured = getattr(settings, "LEDGER_INFLIGHT_GRACE_SECONDS", None)
    if configured is not None:
        return float(configured)
    longest = max(float(getattr(settings, "BUDGET_RESERVATION_TTL_SECONDS", 600.0)),
                  float(getattr(settings, "REQUEST_TIMEOUT_SECONDS", 60.0))
                  * int(getattr(settings, "MAX_UPSTREAM_ATTEMPTS", 3)))
    return longest + MARGIN_SECONDS


def _lost_entry(marker: dict) -> dict:
    return {**marker, "status": 502, "error_type": INFLIGHT_LOST, "usage_estimated": True, "attempts": 1,
            "completion_tokens": 0, "latency_ms": 0}


def reconcile_inflight(*, now: float | None = None, grace: float | None = None, client=None) -> int:
    """Write the records of requests started before `now - grace` that never finished. Returns how many
    markers were billed (not counting those whose record had arrived)."""
    client = client or cb_redis.sync_client()
    cutoff = (time.time() if now is None else now) - (grace_seconds() if grace is None else grace)
    billed = 0
    while True:
        ids = [rid.decode() if isinstance(rid, bytes) else rid
               for rid in client.zrangebyscore(INFLIGHT_STARTED, "-inf", cutoff, start=0, num=BATCH)]
        if not ids:
            return billed
        markers = client.hmget(INFLIGHT, ids)
        recorded = set(UsageRecord.objects.filter(request_id__in=ids).values_list("request_id", flat=True))
        payloads = []
        for request_id, raw in zip(ids, markers, strict=True):
            if raw is None or request_id in recorded:
                continue
            try:
                payloads.append(orjson.dumps(_lost_entry(orjson.loads(raw))))
            except orjson.JSONDecodeError:
                logger.error("in-flight marker %s unreadable, dropped: %r", request_id, raw[:300])
        if payloads:
            ingest_entries(payloads)
            billed += len(payloads)
            logger.warning("ledger: %d request(s) a web process never finished billed at their estimated cost",
                           len(payloads))
        pipe = client.pipeline(transaction=False)
        pipe.hdel(INFLIGHT, *ids)
        pipe.zrem(INFLIGHT_STARTED, *ids)
        pipe.execute()
