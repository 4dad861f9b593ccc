"""Recording an execution and handing it to Celery once the recording commits (ids in, by task name)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from celery import current_app
from django.db import connections, transaction
from django.utils import timezone

from .models import ExecutionStatus, Function, FunctionExecution

logger = logging.getLogger("apps.functions")

TASK_RUN = "functions.run"
LINK_KEYS = ("workflow", "instance_id", "token_id", "agent_execution_id")


def execution_create(function: Function, *, input: dict, trigger: str, context: dict | None = None,
                     trigger_ref_id=None, parent: FunctionExecution | None = None,
                     status: str = ExecutionStatus.PENDING, error: str = "", error_code: str = "",
                     timeout: float | None = None, due_in: float = 0.0) -> FunctionExecution:
    """An execution row; links (workflow, instance, token, agent run) come from `context`, else the parent's.
    A status other than pending records a run that ended before it started (a mapping that failed). `due_in`:
    the delay it is enqueued with (the sweep that re-enqueues lost runs leaves it alone until then)."""
    context = dict(context or {})
    links = {key: context.get(key) or (getattr(parent, key, None) if parent else None) for key in LINK_KEYS}
    finished = status != ExecutionStatus.PENDING
    now = timezone.now()
    timeout_seconds = function.timeout_seconds if timeout is None else min(float(timeout), function.timeout_seconds)
    return FunctionExecution.objects.create(
        tenant_id=function.tenant_id, function=function, function_version=function.version, status=status,
        trigger=str(trigger)[:40], trigger_ref_id=trigger_ref_id, input=input, context=context,
        max_attempts=function.max_attempts, timeout_seconds=timeout_seconds,
        workflow=str(links["workflow"] or "")[:64], instance_id=links["instance_id"], token_id=links["token_id"],
        agent_execution_id=str(links["agent_execution_id"] or "")[:64], parent=parent,
        depth=(parent.depth + 1) if parent else int(context.get("depth") or 0),
        error=error, error_code=error_code, finished_at=now if finished else None,
        started_at=now if finished else None, duration_ms=0 if finished else None,
        next_attempt_at=None if finished else now + timedelta(seconds=due_in))


def enqueue(execution_id, attempt: int = 1, countdown: float = 0.0) -> None:
    """Run attempt `attempt` of the execution on a worker, after the current transaction commits."""
    args = (str(execution_id), attempt)

    def send():
        task = current_app.tasks[TASK_RUN]
        if current_app.conf.task_always_eager:
            if countdown > 0:
                # The embedded default has no broker to hold a countdown: a timer in this process runs it.
                timer = threading.Timer(countdown, _run_in_thread, (task, args))
                timer.daemon = True
                timer.start()
            else:
                task.apply(args)
        else:
            task.apply_async(args, countdown=countdown or None)

    transaction.on_commit(send)


def _run_in_thread(task, args) -> None:
    try:
        task.apply(args)
    except Exception:  # a timer thread has no caller to tell
        logger.exception("function execution %s failed to run", args[0])
    finally:
        connections.close_all()
