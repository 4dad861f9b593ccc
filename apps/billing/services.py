"""Writes for budgets and budget alerts. Keyword-only arguments, tenant first."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.http import validate_upstream_url

from .budget_counters import AlertDue
from .models import Budget, BudgetAlert

logger = logging.getLogger("apps.billing.budgets")

BUDGET_FIELDS = ("name", "api_key", "user_label", "project_label", "model", "limit", "period", "action",
                 "downgrade_threshold", "alert_thresholds", "webhook_url", "enabled")
WEBHOOK_TIMEOUT_SECONDS = 10.0
SENDING_STALE_AFTER = timedelta(minutes=5)  # a claim this old belongs to a worker that died mid-send


# ---- budgets --------------------------------------------------------------------------------------------

def _apply(budget: Budget, fields: dict, webhook_secret: str | None) -> Budget:
    unknown = set(fields) - set(BUDGET_FIELDS)
    if unknown:
        raise TypeError(f"unknown budget fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(budget, name, "" if value is None and name in ("user_label", "project_label", "model",
                                                                 "webhook_url", "name") else value)
    if webhook_secret is not None:
        if len(webhook_secret) > 1024 or any(ch in webhook_secret for ch in "\r\n\x00"):
            raise ValidationError({"webhook_secret": "The secret has invalid characters or is too long."})
        budget.set_webhook_secret(webhook_secret)
    if not budget.webhook_url and webhook_secret is None:
        budget.set_webhook_secret("")  # no webhook, no secret kept
    budget.full_clean(exclude=["tenant"])
    budget.save()
    return budget


@transaction.atomic
def budget_create(*, tenant, webhook_secret: str | None = None, **fields) -> Budget:
    budget = Budget(tenant=tenant)
    return _apply(budget, fields, webhook_secret)


@transaction.atomic
def budget_update(*, tenant, budget: Budget, webhook_secret: str | None = None, **fields) -> Budget:
    if budget.tenant_id != tenant.id:
        raise Budget.DoesNotExist
    return _apply(budget, fields, webhook_secret)


def budget_delete(*, tenant, budget: Budget) -> None:
    if budget.tenant_id != tenant.id:
        raise Budget.DoesNotExist
    budget.delete()


# ---- alerts ---------------------------------------------------------------------------------------------

def budget_alert_record(budget_id: int, period_start: datetime, threshold, spent: Decimal) -> BudgetAlert | None:
    """Record that `threshold` percent was crossed in the period, once: the unique constraint makes a second
    call (another process, a counter rebuilt from the ledger) return None. Enqueues the webhook on commit."""
    budget = Budget.objects.filter(pk=budget_id).first()
    if budget is None:
        return None
    status = BudgetAlert.WebhookStatus.PENDING if budget.webhook_url else BudgetAlert.WebhookStatus.NONE
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(budget=budget, period_start=period_start,
                                               threshold=Decimal(str(threshold)), spent=spent, limit=budget.limit,
                                               webhook_status=status)
    except IntegrityError:
        return None
    logger.warning("budget alert: %s reached %s%% ($%s of $%s) in the period from %s", budget.describe(),
                   threshold, spent, budget.limit, period_start.isoformat(),
                   extra={"cb": {"event": "budget_alert", "budget": budget.id, "tenant": budget.tenant_id,
                                 "threshold": float(threshold), "spent": str(spent), "limit": str(budget.limit),
                                 "period_start": period_start.isoformat()}})
    if budget.webhook_url:
        from .tasks import budget_alert_webhook

        transaction.on_commit(lambda: budget_alert_webhook.delay(alert.id))
    return alert


def budget_alerts_record(alerts: Iterable[AlertDue]) -> list[BudgetAlert]:
    """Record the alerts a settle reported; returns those that were new."""
    recorded = []
    for due in alerts:
        alert = budget_alert_record(due.budget_id, due.period_start, due.threshold, due.spent)
        if alert is not None:
            recorded.append(alert)
    return recorded


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
