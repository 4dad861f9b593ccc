"""Starting an execution's attempt: a Celery task on a broker, or, in the embedded default (eager Celery, no
worker), a daemon thread of this process — so an API call that moves a token never waits for the model."""

from __future__ import annotations

import logging
import threading
import time

from celery import current_app
from django.db import connections

from .runner import execution_run

TASK = "agents.run_execution"
log = logging.getLogger(__name__)


def enqueue(execution_id: str, attempt: int, *, countdown: float = 0.0) -> None:
    if current_app.conf.task_always_eager:
        thread = threading.Thread(target=_run_in_thread, args=(execution_id, attempt, countdown),
                                  name=f"agent-{execution_id[:8]}", daemon=True)
        thread.start()
    else:
        current_app.tasks[TASK].apply_async((execution_id, attempt), countdown=countdown or None)


def _run_in_thread(execution_id: str, attempt: int, countdown: float) -> None:
    try:
        delay = countdown
        while delay is not None:
            if delay:
                time.sleep(delay)
            delay = execution_run(execution_id, attempt)
            attempt += 1
    except Exception:
        log.exception("agent execution %s failed in its thread", execution_id)
    finally:
        connections.close_all()
