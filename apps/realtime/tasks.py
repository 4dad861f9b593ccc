"""Celery tasks of the real-time layer."""

from __future__ import annotations

from celery import shared_task

from .relay_loop import drain_fresh


@shared_task(name="realtime.relay_events", ignore_result=True)
def relay_events() -> int:
    """The cross-process sweep (beat): publish committed events no listener published, forward to NATS. It never
    queues behind a relay already publishing (that one takes the rows), so it cannot hold up a worker."""
    return drain_fresh(wait=False)
