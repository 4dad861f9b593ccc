"""Celery tasks of billing. Thin: ids in, a service does the work."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(bind=True, autoretry_for=(services.WebhookDeliveryError,), retry_backoff=5, retry_backoff_max=600,
             retry_jitter=True, max_retries=8, acks_late=True)
def budget_alert_webhook(self, alert_id: int) -> str:
    """POST a budget alert to its webhook; retried with exponential backoff, never resent once delivered."""
    return services.budget_alert_webhook_send(alert_id=alert_id)
