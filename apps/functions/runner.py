"""Running an execution: claim it, run attempts (schemas checked around the runtime), retry with backoff on the
errors the function names, record the end, then start what follows (function_completed triggers, chains).

Every step that changes an execution's status is one conditional UPDATE: a task claims attempt n only while
the row is pending after n-1 attempts (a duplicated task finds nothing to claim), and the end is written only
while the row is still running (a cancellation in between wins, and the result is dropped)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import current_app
from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.workflows import outbox

from . import follow
from .errors import RunError
from .launch import enqueue
from .models import FINAL_ERROR_CODES, Backoff, ExecutionStatus, FunctionExecution
from .runtimes import RUNTIMES, RunContext
from .runtimes.base import truncate
from .schemas import instance_problems

logger = logging.getLogger("apps.functions")

MAX_INLINE_RETRY_WAIT = 60.0  # a synchronous run (an agent's tool call) waits at most this long between attempts


def backoff_delay(function, attempt: int) -> float:
    """The wait after failed attempt `attempt` (1-based): fixed, linear or exponential, capped."""
    base = max(0.0, function.retry_delay_seconds)
    if function.backoff == Backoff.FIXED:
        delay = base
    elif function.backoff == Backoff.LINEAR:
        delay = base * attempt
    else:
        delay = base * 2 ** (attempt - 1)
    return min(delay, max(0.0, function.retry_max_delay_seconds))


def retryable(function, error: RunError) -> bool:
    return error.code not in FINAL_ERROR_CODES and error.code in (function.retry_on or [])


LEASE_GRACE_SECONDS = 60.0


def claim(execution_id, attempt: int) -> bool:
    """Take attempt `attempt`: from pending after attempt-1 attempts, or again from running when the worker
    that held it died (its lease, `next_attempt_at` while running, expired; Celery redelivers the task)."""
    now = timezone.now()
    row = FunctionExecution.objects.filter(pk=execution_id).values("timeout_seconds").first()
    if row is None:
        return False
    lease = now + timedelta(seconds=row["timeout_seconds"] + LEASE_GRACE_SECONDS)
    fresh = Q(status=ExecutionStatus.PENDING, attempts=attempt - 1)
    lost = Q(status=ExecutionStatus.RUNNING, attempts=attempt, next_attempt_at__lt=now)
    return bool(FunctionExecution.objects.filter(fresh | lost, pk=execution_id).update(
        status=ExecutionStatus.RUNNING, attempts=attempt, started_at=Coalesce("started_at", Value(now)),
        next_attempt_at=lease))


def redeliver_lost(now=None, *, batch: int = 100) -> int:
    """Enqueue again what a lost task left behind (a broker that dropped it, a worker killed mid-run): pending
    runs a minute past due and running ones whose lease expired. Claiming makes a needless one harmless."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=LEASE_GRACE_SECONDS)
    rows = FunctionExecution.objects.filter(
        Q(status=ExecutionStatus.PENDING, next_attempt_at__lt=stale)
        | Q(status=ExecutionStatus.RUNNING, next_attempt_at__lt=now)).values_list("id", "status", "attempts")
    count = 0
    for execution_id, status, attempts in rows[:batch]:
        enqueue(execution_id, attempts + 1 if status == ExecutionStatus.PENDING else attempts)
        count += 1
    return count


def is_cancelled(execution_id) -> bool:
    return FunctionExecution.objects.filter(pk=execution_id, status=ExecutionStatus.CANCELLED).exists()


def execution_run(execution_id, attempt: int = 1, *, defer_retries: bool = True) -> str:
    """Run attempt `attempt` (and, unless retries are deferred to a Celery countdown, the ones after it).
    Returns what happened: skipped (nothing to claim), retrying, or the final status."""
    if not claim(execution_id, attempt):
        return "skipped"
    defer_retries = defer_retries and not current_app.conf.task_always_eager
    while True:
        execution = FunctionExecution.objects.select_related("function").get(pk=execution_id)
        function = execution.function
        try:
            _event(execution, "function_executing", {"attempt": execution.attempts})
        except Exception:  # the stream misses one event; the run goes on
            logger.exception("function execution %s: its executing event failed", execution_id)
        started = time.monotonic()
        result, error = None, None
        try:
            result = attempt_once(execution)
        except RunError as exc:
            error = exc
        except Exception as exc:  # a defect in a runtime must end the run, not leave it running forever
            logger.exception("function %s: attempt failed unexpectedly", function.id)
            error = RunError(f"Internal error: {type(exc).__name__}", code="exception")
        entry = {"attempt": execution.attempts, "duration_ms": int((time.monotonic() - started) * 1000),
                 "at": timezone.now().isoformat(), "outcome": "ok" if error is None else error.code}
        if error is not None:
            entry["error"] = error.message[:500]
        logs = [*execution.logs, entry]
        if error is None:
            return _finish(execution, ExecutionStatus.COMPLETED, logs=logs, output=result.output,
                           stdout=result.stdout, stderr=result.stderr)
        if not (retryable(function, error) and execution.attempts < execution.max_attempts):
            status = ExecutionStatus.TIMEOUT if error.code == "timeout" else ExecutionStatus.FAILED
            if error.code == "cancelled":
                status = ExecutionStatus.CANCELLED
            return _finish(execution, status, logs=logs, error=error)
        delay = backoff_delay(function, execution.attempts)
        if not _back_to_pending(execution, logs, error, delay):
            return ExecutionStatus.CANCELLED
        if defer_retries:
            enqueue(execution.id, execution.attempts + 1, countdown=delay)
            return "retrying"
        if not _wait(execution.id, min(delay, MAX_INLINE_RETRY_WAIT)) or not claim(execution.id,
                                                                                   execution.attempts + 1):
            return ExecutionStatus.CANCELLED


def attempt_once(execution: FunctionExecution):
    function = execution.function
    if not function.enabled:
        raise RunError("The function is disabled.", code="not_allowed")
    problems = instance_problems(function.input_schema, execution.input)
    if problems:
        raise RunError("The input does not match the input schema: " + "; ".join(problems), code="input_invalid")
    ctx = RunContext(execution_id=str(execution.id), function_id=str(function.id), trigger=execution.trigger,
                     timeout=execution.timeout_seconds, attempt=execution.attempts,
                     is_cancelled=lambda: is_cancelled(execution.id), facts=execution.context)
    result = RUNTIMES[function.runtime].run(function, execution.input, ctx)
    problems = instance_problems(function.output_schema, result.output)
    if problems:
        raise RunError("The output does not match the output schema: " + "; ".join(problems), code="output_invalid",
                       stdout=result.stdout, stderr=result.stderr)
    return result


def _back_to_pending(execution, logs, error: RunError, delay: float) -> bool:
    return bool(FunctionExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.RUNNING).update(
        status=ExecutionStatus.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=delay), logs=logs,
        error=error.message[:4000], error_code=error.code, stdout=truncate(error.stdout),
        stderr=truncate(error.stderr)))


def _wait(execution_id, delay: float) -> bool:
    """Sleep before an inline retry, waking to notice a cancellation; False when cancelled."""
    deadline = time.monotonic() + delay
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
        if is_cancelled(execution_id):
            return False
    return True


def _finish(execution, status: str, *, logs, output=None, error: RunError | None = None, stdout: str = "",
            stderr: str = "") -> str:
    now = timezone.now()
    fields = {"status": status, "output": output, "logs": logs, "finished_at": now,
              "duration_ms": int((now - (execution.started_at or now)).total_seconds() * 1000),
              "error": error.message[:4000] if error else "", "error_code": error.code if error else "",
              "stdout": truncate(error.stdout if error else stdout),
              "stderr": truncate(error.stderr if error else stderr),
              "next_attempt_at": None}
    with transaction.atomic():
        if not FunctionExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.RUNNING).update(**fields):
            return ExecutionStatus.CANCELLED  # cancelled while it ran: the cancellation stands
        for name, value in fields.items():
            setattr(execution, name, value)
        try:  # a savepoint: what follows must never undo the recorded end (the run would be run again)
            with transaction.atomic():
                _event(execution, "function_completed", {
                    "status": status, "success": status == ExecutionStatus.COMPLETED, "error": fields["error"][:500],
                    "duration_ms": fields["duration_ms"]})
                if status != ExecutionStatus.CANCELLED:
                    follow.after_execution(execution)
        except Exception:
            logger.exception("function execution %s: its event, triggers or chains failed", execution.id)
    return status


def _event(execution, type_: str, extra: dict) -> None:
    """Workflow-linked runs report to the instance's event stream (the real-time relay streams them)."""
    if not (execution.instance_id and execution.workflow):
        return
    outbox.event_record(execution.tenant_id, workflow=execution.workflow, type=type_,
                        instance_id=execution.instance_id, token_id=execution.token_id,
                        data={"function_id": str(execution.function_id), "function": execution.function.name,
                              "execution_id": str(execution.id), "trigger": execution.trigger, **extra})
