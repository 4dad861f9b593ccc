"""Celery tasks of workflows. Thin: ids in, a firing function does the work and re-checks everything under the
instance lock, so a retried or duplicated task never fires twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import firing

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_jitter": True, "max_retries": 5,
         "acks_late": True, "ignore_result": True}


@shared_task(name=firing.TASK_AUTOMATIC, **RETRY)
def fire_automatic(instance_id: str, fire_count: int) -> bool:
    return firing.fire_automatic(instance_id, fire_count)


@shared_task(name=firing.TASK_DELAYED, **RETRY)
def fire_delayed(instance_id: str, transition_id: str, enabled_since: str) -> bool:
    return firing.fire_delayed(instance_id, transition_id, enabled_since)


@shared_task(name="workflows.fire_due", **RETRY)
def fire_due() -> int:
    return firing.fire_due()
