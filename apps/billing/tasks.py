"""Celery tasks of billing. Thin: ids and numbers in, a service does the work."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from . import request_logs, services
from .alert_webhooks import budget_alert_webhook
from .budget_outcomes import AlertDue
from .ledger_inflight import reconcile_inflight as reconcile_inflight_markers

__all__ = ["budget_alert_webhook", "purge_request_logs", "reconcile_inflight", "record_budget_alerts"]


@shared_task(name="billing.record_budget_alerts", autoretry_for=(DatabaseError,), retry_backoff=2,
             retry_backoff_max=300, retry_jitter=True, max_retries=10, acks_late=True)
def record_budget_alerts(alerts: list[dict]) -> int:
    """Record thresholds a settle crossed (`AlertDue.as_message()` each). Idempotent: an alert already
    recorded for its budget, period and threshold is skipped (unique constraint). Returns how many were new."""
    return len(services.budget_alerts_record(AlertDue.from_message(message) for message in alerts))


@shared_task(name="billing.reconcile_inflight", ignore_result=True, autoretry_for=(Exception,), retry_backoff=True,
             retry_backoff_max=300, max_retries=5)
def reconcile_inflight() -> int:
    """Bill requests a killed web process never finished, at their estimated cost (beat: every minute)."""
    return reconcile_inflight_markers()


@shared_task(name="billing.purge_request_logs", ignore_result=True, autoretry_for=(Exception,), retry_backoff=True,
             max_retries=5)
def purge_request_logs() -> int:
    """Request logs past their tenant's retention (beat, hourly)."""
    return request_logs.purge_expired()
