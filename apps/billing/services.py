"""Writes for budgets, budget alerts and cost rules. Keyword-only arguments, tenant first."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from . import cost_events
from .alert_webhooks import budget_alert_webhook
from .budget_outcomes import AlertDue
from .models import Budget, BudgetAlert, CostRule

logger = logging.getLogger("apps.billing.budgets")

BUDGET_FIELDS = ("name", "api_key", "user_label", "project_label", "model", "limit", "period", "action",
                 "downgrade_threshold", "alert_thresholds", "webhook_url", "enabled")


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
    event = cost_events.alert_event(alert, budget)

    def committed():
        cost_events.publish([event])  # costUpdates subscribers; never raises
        if budget.webhook_url:
            budget_alert_webhook.delay(alert.id)

    transaction.on_commit(committed)
    return alert


def budget_alerts_record(alerts: Iterable[AlertDue]) -> list[BudgetAlert]:
    """Record the alerts a settle reported; returns those that were new."""
    recorded = []
    for due in alerts:
        alert = budget_alert_record(due.budget_id, due.period_start, due.threshold, due.spent)
        if alert is not None:
            recorded.append(alert)
    return recorded


# ---- cost rules -----------------------------------------------------------------------------------------

def cost_rule_save(*, tenant, rule: CostRule) -> CostRule:
    """Create or update the tenant's own rule; global rules are staff's (admin)."""
    if rule.pk is not None and rule.tenant_id != tenant.id:
        raise PermissionDenied("Global cost rules are managed by staff.")
    rule.tenant = tenant
    rule.full_clean()
    rule.save()
    return rule


def cost_rule_delete(*, tenant, rule: CostRule) -> None:
    if rule.tenant_id != tenant.id:
        raise PermissionDenied("Global cost rules are managed by staff.")
    rule.delete()
