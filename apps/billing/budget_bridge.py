"""Where the budget stores meet the database, without the web process writing it: the ledger's spend for a
counter rebuild (a read, in a worker thread) and the alerts a settle made due (handed to a Celery task)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from decimal import Decimal

from django.db import close_old_connections

from .budget_outcomes import AlertDue
from .budget_spec import BudgetSpec
from .budget_store import BudgetStore
from .budget_store_memory import LocalBudget
from .budget_store_redis import RedisBudget
from .selectors import budget_spent
from .tasks import record_budget_alerts

logger = logging.getLogger("apps.billing.budgets")


async def load_used_from_ledger(spec: BudgetSpec, period_start: datetime) -> Decimal:
    """The rebuild source: the ledger's sum for the budget's scope and period, in a worker thread."""

    def query() -> Decimal:
        close_old_connections()
        try:
            return budget_spent(spec.id, period_start)
        finally:
            close_old_connections()

    return await asyncio.to_thread(query)


async def record_alerts(alerts: list[AlertDue]) -> int:
    """Hand a settle's alerts to the `billing.record_budget_alerts` task (rows, log lines, webhooks are the
    worker's). Enqueueing is a Redis write, done in a worker thread so the event loop never blocks; with eager
    Celery (the embedded default) the task runs right there. Returns how many alerts were new when the task
    ran in-process, else how many were enqueued. Never raises: an alert that cannot be enqueued is logged."""
    if not alerts:
        return 0
    messages = [alert.as_message() for alert in alerts]

    def enqueue() -> int:
        eager = record_budget_alerts.app.conf.task_always_eager
        if eager:
            close_old_connections()  # the task writes from this worker thread
        try:
            result = record_budget_alerts.apply_async(args=[messages])
            return int(result.get()) if eager else len(messages)
        finally:
            if eager:
                close_old_connections()

    try:
        return await asyncio.to_thread(enqueue)
    except Exception as exc:
        logger.warning("budget alerts could not be recorded (%s: %s): %s", type(exc).__name__, str(exc)[:200],
                       [(a.budget_id, a.threshold) for a in alerts])
        return 0


def budget_store_for_settings(redis_client) -> BudgetStore:
    """The shared Redis store when the process has a Redis client, else the in-process one; both rebuild
    missing counters from the ledger."""
    if redis_client is not None:
        return RedisBudget(redis_client, load_used=load_used_from_ledger)
    return LocalBudget(load_used=load_used_from_ledger)
