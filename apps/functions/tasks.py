"""Celery tasks of functions. Thin: ids in; the runner claims the execution with a conditional UPDATE, so a
duplicated or redelivered task runs nothing twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import runner, triggers
from .launch import TASK_RUN

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_jitter": True, "max_retries": 5,
         "acks_late": True, "ignore_result": True}


@shared_task(name=TASK_RUN, **RETRY)
def run(execution_id: str, attempt: int = 1) -> str:
    return runner.execution_run(execution_id, attempt)


@shared_task(name="functions.schedules_due", **RETRY)
def schedules_due() -> int:
    """The beat's sweep: due schedules, then runs whose task was lost."""
    started = triggers.schedules_due()
    runner.redeliver_lost()
    return started
