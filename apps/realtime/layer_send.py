"""Sending to the channel layer from synchronous code (billing's tasks, commands) in any process.

In the web process the send is handed to the server's event loop (the relay loop's): the in-memory layer of the
embedded default only works from the loop its consumers run on. Elsewhere (a Celery worker: Redis layer) the
send runs on a loop of its own in this thread."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from . import groups
from .event_messages import STREAM_MESSAGE
from .relay_loop import relay_loop


async def _send_all(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    for group, message in messages:
        await layer.group_send(group, message)


def group_send_from_sync(messages: list[tuple[str, dict]]) -> None:
    if not messages:
        return
    if relay_loop.running:
        future = asyncio.run_coroutine_threadsafe(_send_all(messages), relay_loop.loop)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            future.result(timeout=10)  # a plain thread may wait; the loop's own thread must not
        return
    async_to_sync(_send_all)(messages)


def publish_cost_events(events: list[dict]) -> None:
    """Billing's cost publisher (`apps.billing.cost_events`): each event to its tenant's `costUpdates` group."""
    group_send_from_sync([(groups.cost(event["tenant_id"]), {"type": STREAM_MESSAGE, "payload": event})
                          for event in events])
