"""Running the relay: a task on the web process's event loop, and the outbox listener that wakes it.

The web process starts `relay_loop.start()` from the ASGI lifespan: one task that publishes whenever the
outbox listener wakes it (after any commit in this process that wrote events) and sweeps every
`REALTIME_RELAY_SWEEP_SECONDS` for rows written elsewhere or whose listener never ran. Batches run in a worker
thread (the ORM is synchronous); their channel-layer sends come back to this loop, which is what the in-memory
layer of the embedded default needs (its queues belong to the loop the consumers run on).

Elsewhere (Celery workers, commands, tests) there is no loop here: the listener publishes in the committing
thread when the layer is shared (Redis), and does nothing with the in-memory layer, whose subscribers live in
the web process (its sweep picks the rows up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from . import nats_forward, relay

log = logging.getLogger(__name__)


class RelayLoop:
    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wakeup: asyncio.Event | None = None
        self.task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        nats_forward.keep_connection_on(self.loop)
        self.task = self.loop.create_task(self._run(), name="realtime-relay")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None

    def wake(self) -> None:
        """From any thread."""
        if self.loop is not None and self.running:
            self.loop.call_soon_threadsafe(self.wakeup.set)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=settings.REALTIME_RELAY_SWEEP_SECONDS)
            self.wakeup.clear()
            try:
                await sync_to_async(drain_fresh, thread_sensitive=False)()
            except Exception:
                log.exception("event relay batch failed; retrying at the next sweep")


def drain() -> int:
    """Publish every committed, unpublished event, then forward to NATS; returns how many were published."""
    published = relay.publish_all()
    while nats_forward.forward_pending() == nats_forward.BATCH:
        pass
    return published


def drain_fresh() -> int:
    """`drain` on a thread of its own: connections checked before and released after."""
    close_old_connections()
    try:
        return drain()
    finally:
        close_old_connections()


relay_loop = RelayLoop()


def on_events_committed(events) -> None:
    """The outbox listener (registered by `RealtimeConfig.ready`)."""
    if relay_loop.running:
        relay_loop.wake()
    elif not isinstance(get_channel_layer(), InMemoryChannelLayer):
        drain()
