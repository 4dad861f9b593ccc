"""Cost and budget queries: `costAnalytics`, `budgetStatus`."""

from __future__ import annotations

from datetime import timedelta

import graphene
from django.core.exceptions import ValidationError

from apps.core.graphql_fields import page_arguments, paged, reader

from .. import analytics
from ..access import budget_access_by_id
from ..selectors import budget_list
from .types import Budget, CostAnalytics, remember_budgets

DEFAULT_DAYS = 30
MAX_DAYS = 366


class CostAnalyticsInput(graphene.InputObjectType):
    user_id = graphene.String(description="Only this user label's requests.")
    project_id = graphene.String(description="Only this project label's requests.")
    start_date = graphene.Date(description="First UTC day (default: 30 days before the end).")
    end_date = graphene.Date(description="Last UTC day, inclusive (default: today).")


class BillingQueries(graphene.ObjectType):
    cost_analytics = graphene.Field(CostAnalytics, required=True, input=CostAnalyticsInput(),
                                    user_id=graphene.String(), project_id=graphene.String(),
                                    start_date=graphene.Date(), end_date=graphene.Date(),
                                    description="The tenant's spend; filters as `input` or as arguments.")
    budget_status = graphene.List(graphene.NonNull(Budget), required=True, budget_id=graphene.ID(),
                                  user_id=graphene.String(), project_id=graphene.String(),
                                  description="The tenant's budgets (or one) with the current period's figures.",
                                  **page_arguments())

    @staticmethod
    @reader
    def resolve_cost_analytics(root, info, input=None, **arguments):  # noqa: A002 - GraphQL's argument name
        given = {**{k: v for k, v in dict(input or {}).items() if v is not None},
                 **{k: v for k, v in arguments.items() if v is not None}}
        end = given.get("end_date") or analytics.today_utc()
        start = given.get("start_date") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise ValidationError({"startDate": ["startDate is after endDate."]})
        if (end - start).days + 1 > MAX_DAYS:
            raise ValidationError({"startDate": [f"The range is longer than {MAX_DAYS} days."]})
        figures = analytics.cost_analytics(tenant=info.context.tenant, start=start, end=end,
                                           user=given.get("user_id"), project=given.get("project_id"))
        return CostAnalytics.from_figures(figures)

    @staticmethod
    @reader
    def resolve_budget_status(root, info, *, budget_id=None, user_id=None, project_id=None, first=None, offset=None):
        tenant = info.context.tenant
        if budget_id is not None:
            return remember_budgets(info, [budget_access_by_id(tenant, budget_id)])
        rows = budget_list(tenant=tenant).order_by("id")
        if user_id is not None:
            rows = rows.filter(user_label=user_id)
        if project_id is not None:
            rows = rows.filter(project_label=project_id)
        return remember_budgets(info, paged(rows, first, offset))
