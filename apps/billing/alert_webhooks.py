"""Budget alerts' webhooks: POSTed, HMAC-signed, to the budget's URL by a Celery task, retried with backoff and
never resent once delivered. The task lives here, beside what it sends, so `services` can enqueue it on commit
without importing `tasks` (which imports `services`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.utils import timezone

from apps.core.http import validate_upstream_url

from .models import BudgetAlert

logger = logging.getLogger("apps.billing.budgets")

WEBHOOK_TIMEOUT_SECONDS = 10.0
SENDING_STALE_AFTER = timedelta(minutes=5)  # a claim this old belongs to a worker that died mid-send


class WebhookDeliveryError(Exception):
    """The receiver did not take the webhook; Celery retries with backoff."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0917 - urllib's signature
        return None  # a redirect could lead a tenant's webhook to an internal address; report it as a failure


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_payload(alert: BudgetAlert) -> dict:
    budget = alert.budget
    return {
        "alertId": alert.id,
        "budgetId": budget.id,
        "threshold": float(alert.threshold),
        "spent": float(alert.spent),
        "limit": float(alert.limit),
        "period": budget.period,
        "periodStart": alert.period_start.isoformat().replace("+00:00", "Z"),
    }


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _claim(alert_id: int) -> bool:
    """Mark the alert as being sent, unless it was delivered or another worker is sending it right now."""
    now = timezone.now()
    claimable = ~Q(webhook_status__in=[BudgetAlert.WebhookStatus.DELIVERED, BudgetAlert.WebhookStatus.NONE]) & (
        ~Q(webhook_status=BudgetAlert.WebhookStatus.SENDING)
        | Q(webhook_last_attempt_at__lt=now - SENDING_STALE_AFTER))
    return bool(BudgetAlert.objects.filter(claimable, pk=alert_id).update(
        webhook_status=BudgetAlert.WebhookStatus.SENDING, webhook_last_attempt_at=now))


def budget_alert_webhook_send(*, alert_id: int) -> str:
    """POST the alert to its budget's webhook, signed with the budget's secret. Idempotent: an alert that was
    delivered (or has no webhook) is not sent again. Raises WebhookDeliveryError when a retry may help."""
    alert = BudgetAlert.objects.select_related("budget").filter(pk=alert_id).first()
    if alert is None:
        return "missing"
    if alert.webhook_status in (BudgetAlert.WebhookStatus.DELIVERED, BudgetAlert.WebhookStatus.NONE):
        return alert.webhook_status
    budget = alert.budget
    if not budget.webhook_url:
        BudgetAlert.objects.filter(pk=alert_id).update(webhook_status=BudgetAlert.WebhookStatus.NONE)
        return BudgetAlert.WebhookStatus.NONE
    if not _claim(alert_id):
        raise WebhookDeliveryError("another worker is sending this alert")
    body = json.dumps(webhook_payload(alert), separators=(",", ":"), sort_keys=True).encode()
    error = ""
    try:
        validate_upstream_url(budget.webhook_url)
        request = urllib.request.Request(budget.webhook_url, data=body, method="POST", headers={  # noqa: S310 - scheme checked above
            "Content-Type": "application/json",
            "User-Agent": f"cbplatform/{getattr(settings, 'VERSION', '0')} budget-webhook",
            "X-CB-Event": "budget.threshold",
            "X-CB-Delivery": str(alert.id),
            "X-CB-Signature": webhook_signature(budget.webhook_secret(), body),
        })
        timeout = float(getattr(settings, "BUDGET_WEBHOOK_TIMEOUT_SECONDS", WEBHOOK_TIMEOUT_SECONDS))
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code}"
    except ValidationError as exc:
        status, error = 0, f"webhook URL refused: {'; '.join(exc.messages)}"
    except Exception as exc:  # connection refused, timeout, TLS, decryption: all worth a retry
        status, error = 0, f"{type(exc).__name__}: {str(exc)[:200]}"
    delivered = 200 <= status < 300
    now = timezone.now()
    update = {"webhook_attempts": F("webhook_attempts") + 1, "webhook_last_attempt_at": now,
              "webhook_status": BudgetAlert.WebhookStatus.DELIVERED if delivered else BudgetAlert.WebhookStatus.FAILED,
              "webhook_error": error[:300]}
    if delivered:
        update["webhook_delivered_at"] = now
    BudgetAlert.objects.filter(pk=alert_id).update(**update)
    if not delivered:
        logger.warning("budget alert %s: webhook failed (%s)", alert_id, error or f"HTTP {status}")
        raise WebhookDeliveryError(error or f"HTTP {status}")
    return BudgetAlert.WebhookStatus.DELIVERED


# The name it had when it lived in tasks.py, so messages queued before an upgrade still find it.
@shared_task(name="apps.billing.tasks.budget_alert_webhook", bind=True, autoretry_for=(WebhookDeliveryError,),
             retry_backoff=5, retry_backoff_max=600, retry_jitter=True, max_retries=8, acks_late=True)
def budget_alert_webhook(self, alert_id: int) -> str:
    """POST a budget alert to its webhook; retried with exponential backoff, never resent once delivered."""
    return budget_alert_webhook_send(alert_id=alert_id)
