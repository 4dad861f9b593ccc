"""The outbox relay: committed `WorkflowEvent` rows → channel-layer groups (and NATS, see `nats_forward`).

One batch is one transaction: take the relay lock (a Postgres advisory lock held to commit, plus a mutex within
the process), read unpublished rows in id order, give each a publish `seq` (`PublishedEvent`), mark them
published, send them to their groups, commit. A send that fails rolls the batch back, so a row is marked
published only once its groups got it (at least once: a failure after some sends repeats those, and
subscribers drop what they already have by `seq`). Because batches are serialised and commit as a whole,
`seq` order is commit order; see `models.py` for why readers resume by `seq` rather than by event id.

Who runs a batch: a relay loop (`relay_loop`) woken by the outbox listener after each commit — the web
process's also sweeps every `REALTIME_RELAY_SWEEP_SECONDS` — and the Celery beat task `realtime.relay_events`.
A row whose listener never ran (a process killed after its commit) is found by the next sweep
(`published_at IS NULL`)."""

from __future__ import annotations

import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.utils import timezone

from apps.workflows.models import WorkflowEvent

from . import groups
from .event_messages import LAYER_TYPE, event_message
from .models import PublishedEvent

log = logging.getLogger(__name__)

BATCH = 500
RELAY_LOCK_KEY = 0x63627265  # "cbre": the advisory lock that serialises publish batches across processes
_mutex = threading.Lock()


def relay_lock(*, wait: bool = True) -> bool:
    """Inside a transaction: take the cross-process relay lock (released at commit or rollback); without
    `wait`, False when another relay holds it."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RELAY_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [RELAY_LOCK_KEY])
        return cursor.fetchone()[0]


async def send_to_groups(messages: list[dict]) -> None:
    layer = get_channel_layer()
    for message in messages:
        for group in groups.for_event(message):
            await layer.group_send(group, {"type": LAYER_TYPE, "event": message})


def publish_pending(*, limit: int = BATCH, wait: bool = True) -> int:
    """Publish one batch of committed, unpublished events; returns how many. Without `wait` (a sweep), a batch
    another relay is publishing right now counts as done (0)."""
    if not _mutex.acquire(blocking=wait):
        return 0
    try:
        return _publish_batch(limit, wait)
    finally:
        _mutex.release()


def _publish_batch(limit: int, wait: bool) -> int:
    with transaction.atomic():
        if not relay_lock(wait=wait):
            return 0
        events = list(WorkflowEvent.objects.filter(published_at__isnull=True).order_by("id")[:limit])
        if not events:
            return 0
        rows = PublishedEvent.objects.bulk_create([PublishedEvent(event=e) for e in events])
        WorkflowEvent.objects.filter(id__in=[e.id for e in events]).update(published_at=timezone.now())
        messages = [event_message(e, row.seq) for e, row in zip(events, rows, strict=True)]
        async_to_sync(send_to_groups)(messages)
    return len(events)


def publish_all(*, limit: int = BATCH, wait: bool = True) -> int:
    """Every committed, unpublished event (batch after batch)."""
    total = 0
    while True:
        count = publish_pending(limit=limit, wait=wait)
        total += count
        if count < limit:
            return total
