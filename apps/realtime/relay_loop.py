"""Running the relay: a task on an event loop, and the outbox listener that wakes it.

The web process starts `relay_loop.start()` from the ASGI lifespan: one task on the server's loop that
publishes whenever the outbox listener wakes it (after any commit in this process that wrote events) and sweeps
every `REALTIME_RELAY_SWEEP_SECONDS` for rows written elsewhere or whose listener never ran. Batches run in a
worker thread (the ORM is synchronous); their channel-layer sends come back to this loop, which is what the
in-memory layer of the embedded default needs (its queues belong to the loop the consumers run on).

Elsewhere (Celery workers, commands, tests) the first listener call starts the same task on a loop in a daemon
thread of its own, without the sweep (the web processes and the beat task sweep): committing threads only wake
it, so a burst of commits costs one batch, not one locked transaction each (`REALTIME_RELAY_OUTSIDE_WEB=inline`
publishes in the committing thread instead: the tests' choice). With the in-memory layer nothing is started
there: its subscribers live in the web process, whose sweep picks the rows up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading

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
        self.pid = None
        self.sweep = True  # the web process's loop (the server's) sweeps; a daemon thread's does not
        self._starting = threading.Lock()

    @property
    def running(self) -> bool:
        # A forked child inherits the object but not the loop's thread.
        return self.task is not None and not self.task.done() and self.pid == os.getpid()

    @property
    def on_server_loop(self) -> bool:
        """Running on the web server's loop (started by the lifespan), where the shared gateway runtime is."""
        return self.running and self.sweep

    def start(self, *, sweep: bool = True) -> None:
        """On the running loop (the web process's lifespan)."""
        self.loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        self.sweep = sweep
        self.pid = os.getpid()
        nats_forward.keep_connection_on(self.loop)
        self.task = self.loop.create_task(self._run(), name="realtime-relay")

    def start_in_thread(self) -> None:
        """A loop of its own in a daemon thread (processes without a server loop), once."""
        with self._starting:
            if self.running:
                return
            started = threading.Event()

            async def main():
                self.start(sweep=False)
                started.set()
                await self.task

            threading.Thread(target=asyncio.run, args=(main(),), name="realtime-relay", daemon=True).start()
            started.wait(5)

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
                await asyncio.wait_for(self.wakeup.wait(),
                                       timeout=settings.REALTIME_RELAY_SWEEP_SECONDS if self.sweep else None)
            self.wakeup.clear()
            try:
                await sync_to_async(drain_fresh, thread_sensitive=False)()
            except Exception:
                log.exception("event relay batch failed; retrying at the next sweep")


def drain(*, wait: bool = True) -> int:
    """Publish every committed, unpublished event, then forward to NATS; returns how many were published.
    Without `wait` (the beat's sweep), a relay already at work elsewhere is left to it."""
    published = relay.publish_all(wait=wait)
    while nats_forward.forward_pending(wait=wait) == nats_forward.BATCH:
        pass
    return published


def drain_fresh(*, wait: bool = True) -> int:
    """`drain` on a thread of its own: connections checked before and released after."""
    close_old_connections()
    try:
        return drain(wait=wait)
    finally:
        close_old_connections()


relay_loop = RelayLoop()


def on_events_committed(events) -> None:
    """The outbox listener (registered by `RealtimeConfig.ready`): wakes this process's relay."""
    if not relay_loop.running:
        if isinstance(get_channel_layer(), InMemoryChannelLayer):
            return
        if settings.REALTIME_RELAY_OUTSIDE_WEB == "inline":
            # On a connection of its own (the caller's keeps only its own statements), waited for.
            publisher = threading.Thread(target=drain_fresh, name="realtime-relay-inline")
            publisher.start()
            publisher.join()
            return
        relay_loop.start_in_thread()
    relay_loop.wake()
