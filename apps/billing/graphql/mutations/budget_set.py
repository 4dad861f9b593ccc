"""`setBudget`: create the budget of a scope (user / project / model labels) and period, or change it.

The budget is `budgetId` when given, else the tenant's budget with the same narrowing and period (so running
the documents' example twice changes one budget instead of adding a second).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import graphene
from django.core.exceptions import ValidationError

from apps.core.graphql_fields import mutation

from ... import services
from ...access import budget_access_by_id
from ...models import Budget as BudgetRow
from ...models.budgets import DEFAULT_ALERT_THRESHOLDS
from ..types import Budget, remember_budgets


class BudgetInput(graphene.InputObjectType):
    budget_id = graphene.ID(description="Change this budget; default: the one with the same scope and period.")
    name = graphene.String()
    user_id = graphene.String(description="Only this user label's requests.")
    project_id = graphene.String(description="Only this project label's requests.")
    model = graphene.String(description="Only requests for this model.")
    limit = graphene.Float(required=True, description="USD per period.")
    period = graphene.String(description="daily, weekly, monthly (default) or total.")
    action = graphene.String(description="block (default), downgrade or notify.")
    alert_thresholds = graphene.List(graphene.NonNull(graphene.Float), description="Percents, e.g. [50, 80, 95].")
    enabled = graphene.Boolean()


class SetBudget(graphene.Mutation):
    class Arguments:
        input = BudgetInput(required=True)

    Output = Budget

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        given = {"user_label": input.user_id, "project_label": input.project_id, "model": input.model,
                 "period": input.period.lower() if input.period else None, "name": input.name,
                 "action": input.action, "enabled": input.enabled, "alert_thresholds": input.alert_thresholds}
        fields = {name: value for name, value in given.items() if value is not None}
        fields["limit"] = _money(input.limit)
        if input.budget_id is not None:  # that budget: only what the input gives changes
            budget = budget_access_by_id(tenant, input.budget_id, for_write=True)
            return remember_budgets(info, [services.budget_update(tenant=tenant, budget=budget, **fields)])[0]
        scope = {"user_label": "", "project_label": "", "model": "", "period": BudgetRow.Period.MONTHLY}
        scope.update({name: fields[name] for name in scope if name in fields})
        budget = BudgetRow.objects.select_for_update().filter(tenant=tenant, api_key__isnull=True, **scope).first()
        if budget is None:
            budget = services.budget_create(tenant=tenant, **{"alert_thresholds": list(DEFAULT_ALERT_THRESHOLDS),
                                                              **scope, **fields})
        else:
            budget = services.budget_update(tenant=tenant, budget=budget, **fields)
        return remember_budgets(info, [budget])[0]


def _money(value: float) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0:
        raise ValidationError({"limit": ["A limit is 0 or more USD."]})
    return amount
