"""Costs and budgets over GraphQL, from real ledger rows: the documents' CostAnalytics and SetBudget."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.billing.models import Budget
from tests.billing.factories import usage_record

from .conftest import codes

pytestmark = pytest.mark.django_db

SET_BUDGET = """mutation SetBudget {
  setBudget(input: {
    userId: "user-123"
    projectId: "project-456"
    limit: 100.0
    period: "monthly"
    alertThresholds: [50, 80, 95]
  }) {
    budgetId
    limit
    used
    remaining
    isExhausted
    alerts {
      threshold
      triggered
      message
    }
  }
}"""


def _ledger(tenant):
    now = timezone.now()
    usage_record(tenant, cost="0.30", provider="openai", model_served="gpt-4o", prompt_tokens=100,
                 completion_tokens=50, user_label="user-123", project_label="project-456")
    usage_record(tenant, cost="0.10", provider="anthropic", model_served="claude-3-haiku", prompt_tokens=40,
                 completion_tokens=10, user_label="someone-else")
    usage_record(tenant, cost="0.05", provider="openai", model_served="gpt-4o", prompt_tokens=10,
                 completion_tokens=5, created_at=now - timedelta(days=2), user_label="user-123")


def test_set_budget_as_the_documents_write_it(tenant_a):
    tenant, gql = tenant_a
    _ledger(tenant)
    budget = gql(SET_BUDGET)["setBudget"]
    spent = 0.30  # the budget counts user-123 within project-456 only
    assert budget["limit"] == 100.0 and budget["used"] == pytest.approx(spent)
    assert budget["remaining"] == pytest.approx(100 - spent) and budget["isExhausted"] is False
    assert [a["threshold"] for a in budget["alerts"]] == [50, 80, 95]
    assert not any(a["triggered"] for a in budget["alerts"])
    assert budget["alerts"][0]["message"] == "50% of the monthly budget not reached."
    again = gql(SET_BUDGET.replace("limit: 100.0", "limit: 0.2"))["setBudget"]
    assert again["budgetId"] == budget["budgetId"] and again["isExhausted"] is True  # the same budget, changed
    assert Budget.objects.filter(tenant=tenant).count() == 1
    status = gql("{ budgetStatus { budgetId userId projectId period limit used } }")["budgetStatus"]
    assert status == [{"budgetId": budget["budgetId"], "userId": "user-123", "projectId": "project-456",
                       "period": "monthly", "limit": 0.2, "used": pytest.approx(spent)}]


def test_bad_budgets_are_input_errors_and_change_nothing(tenant_a):
    tenant, gql = tenant_a
    for bad, param in (('period: "fortnightly"', "period"), ("alertThresholds: [0]", "alert_thresholds")):
        _, errors = gql.errors(f'mutation {{ setBudget(input: {{limit: 5, {bad}}}) {{ budgetId }} }}')
        assert codes(errors) == ["VALIDATION_ERROR"] and errors[0]["extensions"]["param"] == param
    _, errors = gql.errors("mutation { setBudget(input: {limit: -1}) { budgetId } }")
    assert codes(errors) == ["VALIDATION_ERROR"]
    assert not Budget.objects.filter(tenant=tenant).exists()


def test_budget_status_loads_every_budget_at_once(tenant_a):
    tenant, gql = tenant_a
    _ledger(tenant)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            gql("{ budgetStatus { budgetId used remaining alerts { triggered } } }")
        return len(queries)

    for n in range(2):
        gql(f'mutation {{ setBudget(input: {{limit: 5, userId: "u{n}"}}) {{ budgetId }} }}')
    few = count()
    for n in range(2, 8):
        gql(f'mutation {{ setBudget(input: {{limit: 5, userId: "u{n}"}}) {{ budgetId }} }}')
    assert count() == few


def test_cost_analytics(tenant_a):
    tenant, gql = tenant_a
    _ledger(tenant)
    result = gql("""query CostAnalytics { costAnalytics { totalCost totalTokens averageCostPerToken dailySpend
        monthlySpend projectedMonthlySpend periodStart periodEnd
        providerBreakdown { provider cost requests averageCostPerRequest }
        modelBreakdown { model cost requests inputTokens outputTokens }
        costTrends { date cost } dailyCosts { date cost requests tokens } } }""")["costAnalytics"]
    assert result["totalCost"] == pytest.approx(0.45) and result["totalTokens"] == 215
    assert result["averageCostPerToken"] == pytest.approx(0.45 / 215)
    assert result["dailySpend"] == pytest.approx(0.40)
    assert result["providerBreakdown"][0] == {"provider": "openai", "cost": pytest.approx(0.35), "requests": 2,
                                              "averageCostPerRequest": pytest.approx(0.175)}
    assert result["modelBreakdown"][1] == {"model": "claude-3-haiku", "cost": pytest.approx(0.1), "requests": 1,
                                           "inputTokens": 40, "outputTokens": 10}
    assert len(result["costTrends"]) == 30 and result["costTrends"][-1]["cost"] == pytest.approx(0.40)
    assert sum(d["requests"] for d in result["dailyCosts"]) == 3
    narrowed = gql('{ costAnalytics(input: {userId: "user-123"}) { totalCost } '
                   'byArgs: costAnalytics(projectId: "project-456") { totalCost } }')
    assert narrowed["costAnalytics"]["totalCost"] == pytest.approx(0.35)
    assert narrowed["byArgs"]["totalCost"] == pytest.approx(0.30)
    today = timezone.now().date()
    window = gql(f'{{ costAnalytics(startDate: "{today}", endDate: "{today}") {{ totalCost costTrends {{ date }} }} }}')
    assert window["costAnalytics"] == {"totalCost": pytest.approx(0.40), "costTrends": [{"date": str(today)}]}
    _, errors = gql.errors(f'{{ costAnalytics(startDate: "{today}", endDate: "{today - timedelta(days=1)}") '
                           '{ totalCost } }')
    assert codes(errors) == ["VALIDATION_ERROR"]


def test_the_unified_guides_snake_case_query_runs_as_written(tenant_a):
    tenant, gql = tenant_a
    _ledger(tenant)
    result = gql("{ costAnalytics { total_cost daily_usage monthly_usage provider_breakdown top_models } }")
    figures = result["costAnalytics"]
    assert figures["total_cost"] == pytest.approx(0.45) and figures["daily_usage"] == pytest.approx(0.40)
    assert figures["provider_breakdown"][0]["provider"] == "openai"
    assert figures["top_models"][0]["model"] == "gpt-4o"


def test_another_tenants_budget_and_ledger_are_invisible(tenant_a, tenant_b):
    tenant, gql_a = tenant_a
    _, gql_b = tenant_b
    _ledger(tenant)
    budget = gql_a(SET_BUDGET)["setBudget"]
    for query in ("query($id: ID!) { budgetStatus(budgetId: $id) { budgetId } }",
                  "mutation($id: ID!) { setBudget(input: {budgetId: $id, limit: 1}) { budgetId } }"):
        data, errors = gql_b.errors(query, {"id": budget["budgetId"]})
        assert codes(errors) == ["NOT_FOUND"] and not any((data or {}).values())
    assert Budget.objects.get(pk=budget["budgetId"]).limit == Decimal(100)
    assert gql_b("{ costAnalytics { totalCost } budgetStatus { budgetId } }") == {
        "costAnalytics": {"totalCost": 0.0}, "budgetStatus": []}


def test_set_budget_by_id_changes_only_what_is_given(tenant_a):
    _, gql = tenant_a
    budget = gql(SET_BUDGET)["setBudget"]
    changed = gql("""mutation($id: ID!) { setBudget(input: {budgetId: $id, limit: 7, period: "weekly"})
                     { budgetId limit period userId projectId alertThresholds } }""",
                  {"id": budget["budgetId"]})["setBudget"]
    assert changed == {"budgetId": budget["budgetId"], "limit": 7.0, "period": "weekly", "userId": "user-123",
                       "projectId": "project-456", "alertThresholds": [50, 80, 95]}
