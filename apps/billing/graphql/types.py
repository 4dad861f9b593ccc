"""GraphQL types of costs and budgets (the documents' `CostAnalytics`, `setBudget`'s answer)."""

from __future__ import annotations

from datetime import UTC, datetime

import graphene

from apps.core.graphql_fields import JSON, batched, remember

from ..selectors import budget_states


class ProviderCost(graphene.ObjectType):
    provider = graphene.String(required=True)
    cost = graphene.Float(required=True)
    requests = graphene.Int(required=True)
    average_cost_per_request = graphene.Float(required=True)
    share = graphene.Float(required=True, description="Of the period's spend, 0…1.")


class ModelCost(graphene.ObjectType):
    model = graphene.String(required=True)
    cost = graphene.Float(required=True)
    requests = graphene.Int(required=True)
    input_tokens = graphene.Int(required=True)
    output_tokens = graphene.Int(required=True)
    share = graphene.Float(required=True)


class CostTrend(graphene.ObjectType):
    date = graphene.Date(required=True)
    cost = graphene.Float(required=True)


class DailyCost(graphene.ObjectType):
    date = graphene.Date(required=True)
    cost = graphene.Float(required=True)
    requests = graphene.Int(required=True)
    tokens = graphene.Int(required=True)


_SNAKE = "The original server's snake_case name; use the camelCase field."


class CostAnalytics(graphene.ObjectType):
    """Spend over the period (UTC days, inclusive) from the usage ledger and its daily roll-up."""

    total_cost = graphene.Float(required=True, description="USD over the period.")
    total_tokens = graphene.Int(required=True)
    total_requests = graphene.Int(required=True)
    average_cost_per_token = graphene.Float(required=True)
    daily_spend = graphene.Float(required=True, description="USD spent today (UTC).")
    monthly_spend = graphene.Float(required=True, description="USD spent this calendar month so far.")
    projected_monthly_spend = graphene.Float(required=True, description="Month-to-date ÷ days elapsed × days.")
    provider_breakdown = graphene.List(graphene.NonNull(ProviderCost), required=True)
    model_breakdown = graphene.List(graphene.NonNull(ModelCost), required=True)
    cost_trends = graphene.List(graphene.NonNull(CostTrend), required=True, description="One per day, zero-filled.")
    daily_costs = graphene.List(graphene.NonNull(DailyCost), required=True)
    period_start = graphene.Date(required=True)
    period_end = graphene.Date(required=True)
    # The unified server guide's snake_case query (`{ costAnalytics { total_cost daily_usage provider_breakdown
    # } }`) runs as written: the same figures under those names, breakdowns as JSON.
    total_cost_snake = graphene.Float(name="total_cost", deprecation_reason=_SNAKE)
    daily_usage = graphene.Float(name="daily_usage", deprecation_reason=_SNAKE)
    monthly_usage = graphene.Float(name="monthly_usage", deprecation_reason=_SNAKE)
    provider_breakdown_snake = JSON(name="provider_breakdown", deprecation_reason=_SNAKE)
    top_models = JSON(name="top_models", deprecation_reason=_SNAKE)

    @staticmethod
    def from_figures(figures: dict) -> CostAnalytics:
        summary = figures["summary"]
        tokens = summary["total_tokens"]
        providers = [ProviderCost(provider=row["key"] or "unknown", cost=float(row["cost"]),
                                  requests=row["requests"], share=row["share"],
                                  average_cost_per_request=float(row["cost"]) / row["requests"]
                                  if row["requests"] else 0.0) for row in figures["provider"]]
        models = [ModelCost(model=row["key"] or "unknown", cost=float(row["cost"]), requests=row["requests"],
                            input_tokens=row["prompt_tokens"], output_tokens=row["completion_tokens"],
                            share=row["share"]) for row in figures["model"]]
        total = float(summary["cost"])
        return CostAnalytics(
            total_cost=total, total_tokens=tokens, total_requests=summary["requests"],
            average_cost_per_token=total / tokens if tokens else 0.0, daily_spend=float(figures["today"]),
            monthly_spend=float(figures["month_to_date"]),
            projected_monthly_spend=float(figures["projected_month_end"]),
            provider_breakdown=providers, model_breakdown=models,
            cost_trends=[CostTrend(date=row["day"], cost=float(row["cost"])) for row in figures["daily"]],
            daily_costs=[DailyCost(date=row["day"], cost=float(row["cost"]), requests=row["requests"],
                                   tokens=row["total_tokens"]) for row in figures["daily"]],
            period_start=figures["period_start"], period_end=figures["period_end"],
            total_cost_snake=total, daily_usage=float(figures["today"]),
            monthly_usage=float(figures["month_to_date"]),
            provider_breakdown_snake=[{"provider": p.provider, "cost": p.cost, "requests": p.requests}
                                      for p in providers],
            top_models=[{"model": m.model, "cost": m.cost, "requests": m.requests} for m in models[:10]])


class BudgetAlertState(graphene.ObjectType):
    threshold = graphene.Float(required=True, description="Percent of the limit.")
    triggered = graphene.Boolean(required=True)
    triggered_at = graphene.DateTime()
    spent = graphene.Float(description="USD spent when it fired.")
    message = graphene.String(required=True)


class Budget(graphene.ObjectType):
    """A budget with its current period's figures (from the ledger, which trails traffic by the ingestion
    delay)."""

    budget_id = graphene.ID(required=True, source="pk")
    name = graphene.String(required=True)
    scope = graphene.String(required=True)
    user_id = graphene.String()
    project_id = graphene.String()
    model = graphene.String()
    limit = graphene.Float(required=True, source="limit", description="USD per period.")
    period = graphene.String(required=True)
    action = graphene.String(required=True)
    alert_thresholds = graphene.List(graphene.NonNull(graphene.Float), required=True)
    enabled = graphene.Boolean(required=True)
    used = graphene.Float(required=True)
    remaining = graphene.Float(required=True)
    is_exhausted = graphene.Boolean(required=True)
    period_start = graphene.DateTime(required=True)
    period_end = graphene.DateTime()
    alerts = graphene.List(graphene.NonNull(BudgetAlertState), required=True)

    @staticmethod
    def resolve_user_id(budget, info):
        return budget.user_label or None

    @staticmethod
    def resolve_project_id(budget, info):
        return budget.project_label or None

    @staticmethod
    def resolve_model(budget, info):
        return budget.model or None

    @staticmethod
    def resolve_used(budget, info):
        return float(_state(info, budget)["used"])

    @staticmethod
    def resolve_remaining(budget, info):
        return float(_state(info, budget)["remaining"])

    @staticmethod
    def resolve_is_exhausted(budget, info):
        return _state(info, budget)["is_exhausted"]

    @staticmethod
    def resolve_period_start(budget, info):
        return _state(info, budget)["period_start"]

    @staticmethod
    def resolve_period_end(budget, info):
        return _state(info, budget)["period_end"]

    @staticmethod
    def resolve_alerts(budget, info):
        return [BudgetAlertState(threshold=a["threshold"], triggered=a["triggered"], triggered_at=a["triggered_at"],
                                 spent=a["spent"], message=a["message"]) for a in _state(info, budget)["alerts"]]


def remember_budgets(info, budgets) -> list:
    return remember(info, "budget", budgets)


def _state(info, budget) -> dict:
    return batched(info, "budget", "state", budget, lambda rows: budget_states(rows, datetime.now(UTC)))
