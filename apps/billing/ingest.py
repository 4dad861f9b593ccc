"""Moving usage entries from the Redis stream into the Postgres ledger, in batches, idempotently.

A consumer group tracks what each worker read; an entry is acknowledged (and deleted) only after its
batch committed. Entries a dead worker read but never acknowledged are claimed again after a while, so
killing a worker mid-batch loses nothing, and inserting twice is harmless (unique request id).
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from apps.core import redis as cb_redis
from apps.tenants.models import ApiKey, Tenant

from . import cost_events, request_logs
from .ledger_stream import GROUP, INFLIGHT_LOST, STREAM
from .models import RequestLog, UsageRecord

logger = logging.getLogger(__name__)

BATCH = 500


def _consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _record(entry: dict) -> UsageRecord:
    return UsageRecord(
        request_id=entry["request_id"][:64],
        created_at=datetime.fromtimestamp(float(entry["created_at"]), UTC),
        tenant_id=entry.get("tenant_id"), api_key_id=entry.get("api_key_id"),
        user_label=(entry.get("user_label") or "")[:200], project_label=(entry.get("project_label") or "")[:200],
        workflow_id=(entry.get("workflow_id") or "")[:64], agent_id=(entry.get("agent_id") or "")[:64],
        endpoint=entry.get("endpoint", "")[:32], provider=(entry.get("provider") or "")[:64],
        deployment=(entry.get("deployment") or "")[:128],
        model_requested=(entry.get("model_requested") or "")[:256],
        model_served=(entry.get("model_served") or "")[:256],
        strategy=(entry.get("strategy") or "")[:32], attempts=int(entry.get("attempts") or 0),
        prompt_tokens=int(entry.get("prompt_tokens") or 0),
        completion_tokens=int(entry.get("completion_tokens") or 0),
        cached_tokens=int(entry.get("cached_tokens") or 0),
        cache_write_tokens=int(entry.get("cache_write_tokens") or 0),
        reasoning_tokens=int(entry.get("reasoning_tokens") or 0), cost=Decimal(str(entry.get("cost") or "0")),
        latency_ms=float(entry.get("latency_ms") or 0), ttft_ms=entry.get("ttft_ms"),
        status=int(entry.get("status") or 0), error_type=(entry.get("error_type") or "")[:64],
        streamed=bool(entry.get("streamed")), usage_estimated=bool(entry.get("usage_estimated")),
    )


def ingest_entries(payloads: list[bytes]) -> int:
    """Insert entries (JSON) into the ledger; duplicates by request id are ignored. Returns rows offered.
    An entry carrying `log` (its tenant or key opted in to request logs) also becomes a `RequestLog`."""
    records = []
    logged: list[tuple[UsageRecord, str]] = []
    for payload in payloads:
        try:
            entry = orjson.loads(payload)
            records.append(_record(entry))
        except (ValueError, KeyError, TypeError) as exc:
            logger.error("malformed usage entry skipped (%s): %r", type(exc).__name__, payload[:500])
            continue
        if isinstance(entry.get("log"), str):
            logged.append((records[-1], entry["log"]))
    _drop_deleted_owners(records)
    with transaction.atomic():
        _supersede_estimates(records)
        UsageRecord.objects.bulk_create(records, ignore_conflicts=True, batch_size=BATCH)
        _touch_keys(records)
        if logged:
            _request_logs(logged)
        if cost_events.wanted():  # costUpdates subscribers; a row already recorded may be announced again
            cost_events.publish_on_commit(cost_events.usage_events(records))
    return len(records)


def _request_logs(logged: list[tuple[UsageRecord, str]]) -> None:
    tenants = Tenant.objects.in_bulk({record.tenant_id for record, _ in logged if record.tenant_id is not None})
    logs = [request_logs.build(record, payload, tenants[record.tenant_id])
            for record, payload in logged if record.tenant_id in tenants]
    RequestLog.objects.bulk_create(logs, ignore_conflicts=True, batch_size=BATCH)


def _drop_deleted_owners(records: list[UsageRecord]) -> None:
    """A tenant or key deleted while its usage waited in the stream (or a web host's spool) keeps its usage
    row with the owner empty, as deleting it later would (SET_NULL); a dangling id would fail the batch."""
    tenant_ids = {r.tenant_id for r in records if r.tenant_id is not None}
    key_ids = {r.api_key_id for r in records if r.api_key_id is not None}
    tenants = set(Tenant.objects.filter(pk__in=tenant_ids).values_list("pk", flat=True)) if tenant_ids else set()
    keys = set(ApiKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True)) if key_ids else set()
    for record in records:
        if record.tenant_id is not None and record.tenant_id not in tenants:
            record.tenant_id = None
        if record.api_key_id is not None and record.api_key_id not in keys:
            record.api_key_id = None


def _supersede_estimates(records: list[UsageRecord]) -> None:
    """A request's real record replaces the estimate the in-flight reconciler wrote for it (it arrived late:
    a stream longer than the grace, a spool delivered after an outage). Any other duplicate is ignored."""
    real = [r.request_id for r in records if r.error_type != INFLIGHT_LOST]
    if real:
        UsageRecord.objects.filter(request_id__in=real, error_type=INFLIGHT_LOST).delete()


def _touch_keys(records) -> None:
    """API keys' last_used_at from the ledger (the gateway never writes the database). A queryset update on
    purpose: it does not bump the configuration version, so gateways do not reload for it."""
    latest: dict[int, datetime] = {}
    for record in records:
        if record.api_key_id:
            current = latest.get(record.api_key_id)
            if current is None or record.created_at > current:
                latest[record.api_key_id] = record.created_at
    for key_id, when in latest.items():
        ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=when), pk=key_id).update(
            last_used_at=when)


def ensure_group(client) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except Exception as exc:  # BUSYGROUP: it exists
        if "BUSYGROUP" not in str(exc):
            raise


def ingest_once(*, batch: int = BATCH, client=None) -> int:
    """One batch: take over stale entries of dead consumers, else read new ones; commit, then acknowledge."""
    client = client or cb_redis.sync_client()
    ensure_group(client)
    consumer = _consumer()
    idle_ms = int(settings.USAGE_CLAIM_IDLE_SECONDS * 1000)
    _, claimed, _ = client.xautoclaim(STREAM, GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=batch)
    entries = claimed or []
    if not entries:
        response = client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=batch)
        entries = response[0][1] if response else []
    entries = [(entry_id, fields) for entry_id, fields in entries if fields]  # claimed ids may be deleted ones
    if not entries:
        return 0
    ingest_entries([fields[b"e"] for _, fields in entries if b"e" in fields])
    ids = [entry_id for entry_id, _ in entries]
    client.xack(STREAM, GROUP, *ids)
    client.xdel(STREAM, *ids)
    return len(ids)


@shared_task(name="billing.ingest_usage", ignore_result=True, autoretry_for=(Exception,), retry_backoff=True,
             max_retries=None)
def ingest_usage(max_batches: int = 20) -> int:
    """Drain the usage stream (bounded per run; beat runs this every second)."""
    total = 0
    for _ in range(max_batches):
        moved = ingest_once()
        total += moved
        if moved == 0:
            break
    return total
