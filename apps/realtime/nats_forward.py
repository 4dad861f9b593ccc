"""Relayed events forwarded to NATS JetStream (when `NATS_URL` is set), at least once.

The forwarder reads `PublishedEvent` rows after its cursor in `seq` order (commit order, so it never skips a row
that commits late), publishes each to JetStream with `Nats-Msg-Id` = the event id, and advances its cursor only
after the server acknowledged them, in one transaction that holds the cursor row. A crash between the acks and
the commit re-sends those events, and the stream's duplicate window drops them by `Nats-Msg-Id`. The stream is
created on first use when it does not exist. Subjects: `event_messages.nats_subject`."""

from __future__ import annotations

import asyncio
import logging
import weakref

import nats
import orjson
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from nats.js.errors import NotFoundError

from .event_messages import event_message, nats_subject
from .models import PublishedEvent, RelayCursor

log = logging.getLogger(__name__)

BATCH = 500

_persistent: weakref.WeakSet = weakref.WeakSet()  # loops that live as long as the process (the relay loop's)
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cursor_name() -> str:
    """One cursor per stream: a new stream receives the history from the first event."""
    return f"nats:{settings.NATS_STREAM}"[:64]


def enabled() -> bool:
    return bool(settings.WORKFLOW_EVENTS_TO_NATS)


def keep_connection_on(loop: asyncio.AbstractEventLoop) -> None:
    """Calls on `loop` reuse one connection (the relay loop); elsewhere each batch connects and closes."""
    _persistent.add(loop)


async def ensure_stream(js) -> None:
    subjects = [f"{settings.NATS_SUBJECT_PREFIX}.>"]
    try:
        await js.stream_info(settings.NATS_STREAM)
    except NotFoundError:
        await js.add_stream(name=settings.NATS_STREAM, subjects=subjects)


async def _connect():
    client = await nats.connect(settings.NATS_URL, connect_timeout=2, max_reconnect_attempts=2,
                                allow_reconnect=True)
    js = client.jetstream(timeout=5)
    await ensure_stream(js)
    return client, js


async def publish(messages: list[dict]) -> None:
    loop = asyncio.get_running_loop()
    keep = loop in _persistent
    pair = _clients.get(loop) if keep else None
    if pair is None or pair[0].is_closed:
        pair = await _connect()
        if keep:
            _clients[loop] = pair
    client, js = pair
    try:
        for message in messages:
            await js.publish(nats_subject(settings.NATS_SUBJECT_PREFIX, message), orjson.dumps(message),
                             headers={"Nats-Msg-Id": str(message["id"])})
    except Exception:
        _clients.pop(loop, None)
        await client.close()
        raise
    if not keep:
        await client.close()


def forward_pending(*, limit: int = BATCH, wait: bool = True) -> int:
    """Forward one batch past the cursor; returns how many (0 when NATS is not configured, or without `wait`
    when another forwarder holds the cursor)."""
    if not enabled():
        return 0
    RelayCursor.objects.get_or_create(name=cursor_name())
    with transaction.atomic():
        cursor = RelayCursor.objects.select_for_update(skip_locked=not wait).filter(name=cursor_name()).first()
        if cursor is None:
            return 0
        rows = list(PublishedEvent.objects.filter(seq__gt=cursor.seq).select_related("event").order_by("seq")[:limit])
        if not rows:
            return 0
        async_to_sync(publish)([event_message(row.event, row.seq) for row in rows])
        cursor.seq = rows[-1].seq
        cursor.save(update_fields=["seq"])
    return len(rows)
