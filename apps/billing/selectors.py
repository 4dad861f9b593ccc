"""Reads of budgets, alerts, cost rules and the usage ledger. Tenant-scoped where a caller acts for a tenant."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Max, Q, QuerySet, Sum

from apps.providers.models import Provider

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


def last_failures(*, tenant_id: int, provider_ids: list[int]) -> dict[int, tuple[str, datetime]]:
    """Per provider id: the tenant's last failed request through it ("<error type> <status>", when), from the
    ledger (which names providers by slug). Two queries whatever the number of providers."""
    slugs: dict[str, list[int]] = {}
    for pk, slug in Provider.objects.filter(pk__in=provider_ids).values_list("pk", "slug"):
        slugs.setdefault(slug, []).append(pk)
    if not slugs:
        return {}
    failed = UsageRecord.objects.filter(tenant_id=tenant_id, provider__in=list(slugs), status__gte=400)
    latest = dict(failed.order_by().values("provider").annotate(at=Max("created_at")).values_list("provider", "at"))
    if not latest:
        return {}
    which = Q()
    for slug, at in latest.items():
        which |= Q(provider=slug, created_at=at)
    out = {}
    for slug, at, error_type, status in failed.filter(which).values_list("provider", "created_at", "error_type",
                                                                         "status"):
        for pk in slugs.get(slug, []):
            out[pk] = (f"{error_type or 'error'} {status}", at)
    return out


def budget_states(budgets: list[Budget], now: datetime) -> dict[int, dict]:
    """Per budget, its current period as the API shows it: period bounds, used, remaining, isExhausted and one
    entry per alert threshold (triggered or not, with its message). Two queries for any number of budgets: one
    ledger sum per budget in a single aggregate, and the alerts of all of them."""
    if not budgets:
        return {}
    bounds = {b.pk: period_bounds(b.period, now) for b in budgets}
    sums = {}
    for budget in budgets:
        start, end = bounds[budget.pk]
        condition = budget_ledger_filter(budget)
        if budget.period != Budget.Period.TOTAL:
            condition &= Q(created_at__gte=start, created_at__lt=end)
        sums[f"b{budget.pk}"] = Sum("cost", filter=condition)
    tenants = {b.tenant_id for b in budgets}
    spent = UsageRecord.objects.filter(tenant_id__in=tenants).aggregate(**sums)
    alerts: dict[int, dict] = {}
    which = Q()
    for budget in budgets:
        which |= Q(budget_id=budget.pk, period_start=bounds[budget.pk][0])
    for alert in BudgetAlert.objects.filter(which):
        alerts.setdefault(alert.budget_id, {})[Decimal(alert.threshold)] = alert
    out = {}
    for budget in budgets:
        start, end = bounds[budget.pk]
        used = spent[f"b{budget.pk}"] or ZERO
        out[budget.pk] = {"period_start": start, "period_end": end, "used": used,
                          "remaining": max(budget.limit - used, ZERO), "is_exhausted": used >= budget.limit,
                          "alerts": _alert_states(budget, alerts.get(budget.pk, {}))}
    return out


def _alert_states(budget: Budget, fired: dict) -> list[dict]:
    thresholds = sorted({Decimal(str(t)) for t in budget.alert_thresholds or ()} | set(fired))
    out = []
    for threshold in thresholds:
        alert = fired.get(threshold)
        percent = f"{threshold.normalize():f}"
        if alert is not None:
            message = (f"{percent}% of the {budget.period} budget reached: ${alert.spent.normalize():f} of "
                       f"${alert.limit.normalize():f}.")
        else:
            message = f"{percent}% of the {budget.period} budget not reached."
        out.append({"threshold": float(threshold), "triggered": alert is not None,
                    "triggered_at": alert.created_at if alert else None,
                    "spent": float(alert.spent) if alert else None,
                    "webhook_status": alert.webhook_status if alert else None, "message": message})
    return out
