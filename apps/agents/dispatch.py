"""Starting executions: the pending row (once per trigger), then each attempt as a Celery task on a broker, or,
in the embedded default (eager Celery, no worker), on a daemon thread of this process — so an API call that
moves a token never waits for the model."""

from __future__ import annotations

import logging
import threading
import time

from celery import current_app
from django.db import IntegrityError, connections, transaction

from .models import Agent, AgentExecution, PlaceAgent

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
        if countdown:
            time.sleep(countdown)
        current_app.tasks[TASK].run(execution_id, attempt)  # the task's body: a retry starts another thread
    except Exception:
        log.exception("agent execution %s failed in its thread", execution_id)
    finally:
        connections.close_all()


def execution_start(tenant, *, agent: Agent, input=None, place_agent: PlaceAgent | None = None, token=None,
                    workflow: str = "", trigger_key: str = "", countdown: float = 0.0) -> AgentExecution | None:
    """A pending execution, enqueued once the caller's transaction commits. None when `trigger_key` already
    started one (a duplicated trigger)."""
    retry = {**agent.retry_settings, **((place_agent.retry if place_agent else None) or {})}
    tenant_id = tenant if isinstance(tenant, int) else tenant.id
    fields = dict(tenant_id=tenant_id, agent=agent, place_agent=place_agent, workflow=workflow,
                  instance_id=token.instance_id if token is not None else None,
                  token_id=token.id if token is not None else None, trigger_key=trigger_key,
                  input=input if input is not None else {}, model_requested=agent.model,
                  max_attempts=int(retry.get("max_attempts") or 1), timeout_seconds=agent.timeout_seconds)
    try:
        with transaction.atomic():
            execution = AgentExecution.objects.create(**fields)
    except IntegrityError:
        return None
    execution_id = str(execution.id)
    transaction.on_commit(lambda: enqueue(execution_id, 1, countdown=countdown))
    return execution


def execution_from_binding(binding, *, tenant_id: int, workflow: str, instance_id, token_id: str,
                           trigger_key: str) -> str | None:
    """The listener's path (after the commit that moved the token): one INSERT from the cached binding, enqueued
    at once. None when this arrival already started it."""
    fields = dict(tenant_id=tenant_id, agent_id=binding.agent_id, place_agent_id=binding.id, workflow=workflow,
                  instance_id=instance_id, token_id=token_id, trigger_key=trigger_key, model_requested=binding.model,
                  max_attempts=binding.max_attempts, timeout_seconds=binding.timeout_seconds)
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint, so a duplicate leaves the caller's transaction usable
                execution = AgentExecution.objects.create(**fields)
        else:
            execution = AgentExecution.objects.create(**fields)  # after the commit: one round trip
    except IntegrityError:
        return None
    execution_id = str(execution.id)
    transaction.on_commit(lambda: enqueue(execution_id, 1, countdown=binding.initial_delay))
    return execution_id
