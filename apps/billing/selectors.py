"""Reads of budgets, alerts, cost rules and the usage ledger. Tenant-scoped where a caller acts for a tenant."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from .models import Budget, BudgetAlert, CostRule, RequestLog, UsageRecord
from .periods import period_bounds

ZERO = Decimal(0)


def budget_list(*, tenant) -> QuerySet[Budget]:
    return Budget.objects.filter(tenant=tenant).select_related("api_key")


def request_log_list(*, tenant, api_key_id: int | None = None, model: str | None = None, status: int | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> QuerySet[RequestLog]:
    rows = RequestLog.objects.filter(tenant=tenant).select_related("usage")
    if api_key_id is not None:
        rows = rows.filter(usage__api_key_id=api_key_id)
    if model:
        rows = rows.filter(Q(usage__model_served=model) | Q(usage__model_requested=model))
    if status is not None:
        rows = rows.filter(usage__status=status)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    return rows


def budget_ledger_filter(budget: Budget) -> Q:
    """The ledger rows a budget counts: its tenant, and every narrowing it sets."""
    condition = Q(tenant_id=budget.tenant_id)
    if budget.api_key_id:
        condition &= Q(api_key_id=budget.api_key_id)
    if budget.user_label:
        condition &= Q(user_label=budget.user_label)
    if budget.project_label:
        condition &= Q(project_label=budget.project_label)
    if budget.model:
        # The model that served it; a request that failed before any served is counted by the one asked for.
        condition &= Q(model_served=budget.model) | Q(model_served="", model_requested=budget.model)
    return condition


def budget_spent(budget_id: int, period_start: datetime, *, budget: Budget | None = None) -> Decimal:
    """USD the ledger holds for the budget's scope (and model) in the period that starts at `period_start`.
    A budget that no longer exists has spent nothing."""
    if budget is None:
        budget = Budget.objects.filter(pk=budget_id).first()
        if budget is None:
            return ZERO
    start, end = period_bounds(budget.period, period_start)
    rows = UsageRecord.objects.filter(budget_ledger_filter(budget))
    if budget.period != Budget.Period.TOTAL:
        rows = rows.filter(created_at__gte=start, created_at__lt=end)
    total = rows.aggregate(total=Sum("cost"))["total"]
    return total if total is not None else ZERO


def budget_current_alerts(budget: Budget, period_start: datetime) -> list[BudgetAlert]:
    return list(BudgetAlert.objects.filter(budget=budget, period_start=period_start).order_by("threshold"))


def alert_for_webhook(alert_id: int) -> BudgetAlert | None:
    return BudgetAlert.objects.select_related("budget").filter(pk=alert_id).first()


def cost_rule_list(*, tenant) -> QuerySet[CostRule]:
    """The global rules and the tenant's own; another tenant's are invisible."""
    return CostRule.objects.filter(Q(tenant__isnull=True) | Q(tenant=tenant)).select_related("tenant")


def cost_rules_enabled() -> list[CostRule]:
    """Every enabled rule, global and tenants', in evaluation order."""
    return list(CostRule.objects.filter(enabled=True).order_by("priority", "id"))
