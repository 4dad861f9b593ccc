"""Celery tasks of agents. Thin: ids in; the runner claims the execution by a conditional status update, so a
duplicated or redelivered task does nothing. A retryable failure schedules the next attempt with backoff."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown

from . import dispatch, loop, runner
from .runner import execution_run


@shared_task(name=dispatch.TASK, acks_late=True, ignore_result=True)
def run_execution(execution_id: str, attempt: int = 1) -> None:
    delay = execution_run(execution_id, attempt)
    if delay is not None:
        dispatch.enqueue(execution_id, attempt + 1, countdown=delay)


@shared_task(name="agents.sweep_lost", ignore_result=True)
def sweep_lost() -> int:
    return runner.sweep_lost()


# The worker's one event loop (and the gateway runtime on it) is closed when the worker stops.
worker_process_shutdown.connect(loop.shutdown, weak=False)
worker_shutdown.connect(loop.shutdown, weak=False)
