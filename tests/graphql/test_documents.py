"""Every GraphQL example of the product documents (/work/shared/seeds) whose fields are ours, run as written.
(SetBudget, ConfigureProvider, GetProviders, the snake_case createToken and costAnalytics, SimpleCompletion and
the curl forms run in test_billing, test_providers, test_workflows and test_served.)"""

from __future__ import annotations

import json

import pytest

from .test_billing import _ledger

pytestmark = pytest.mark.django_db


def _workflow(gql, workflow_id: str, places: list[str]):
    transitions = [{"id": f"{a}_to_{b}", "fromPlaces": [a], "toPlace": b}
                   for a, b in zip(places, places[1:], strict=False)]
    gql("mutation($i: WorkflowDefinitionInput!) { createWorkflow(input: $i) { id } }",
        {"i": {"id": workflow_id, "name": workflow_id, "places": places, "transitions": transitions,
               "initialPlace": places[0]}})


def test_workflow_completion_and_multi_agent_task(tenant_a):
    _, gql = tenant_a
    _workflow(gql, "research_and_summarize", ["research", "summarize", "done"])
    _workflow(gql, "content_pipeline", ["research", "outline", "write", "review", "edit"])
    workflow_completion = gql("""# Advanced workflow-based completion
mutation WorkflowCompletion {
  createWorkflowInstance(input: {
    workflowId: "research_and_summarize"
    initialData: {
      topic: "quantum computing"
      depth: "intermediate"
      audience: "software engineers"
    }
  }) {
    id
    currentPlace
    streamUrl
  }
}""")["createWorkflowInstance"]
    assert workflow_completion["currentPlace"] == "research"
    assert workflow_completion["streamUrl"] == f"/api/workflow-instances/{workflow_completion['id']}/events/stream"
    multi_agent = gql("""# Multi-agent coordination
mutation MultiAgentTask {
  createWorkflowInstance(input: {
    workflowId: "content_pipeline"
    initialData: {
      topic: "AI trends 2024"
      steps: ["research", "outline", "write", "review", "edit"]
    }
  }) {
    id
    agents {
      id
      role
      status
    }
    streamUrl
  }
}""")["createWorkflowInstance"]
    assert multi_agent["agents"] == [] and multi_agent["streamUrl"].endswith("/events/stream")
    # The curl example's body (JSON with an escaped query), exactly as the guide prints it.
    body = json.loads("""{
    "query": "mutation { createWorkflowInstance(input: { workflowId: \\"content_pipeline\\", initialData: { topic: \\"AI trends\\" } }) { id streamUrl } }"
  }""")  # noqa: E501 - the document's line
    assert gql(body["query"])["createWorkflowInstance"]["streamUrl"].startswith("/api/workflow-instances/")


def test_list_all_workflows(tenant_a):
    _, gql = tenant_a
    _workflow(gql, "document_review", ["draft", "review", "approved"])
    result = gql("""# List all workflows
query {
  workflows {
    id
    name
    places
    transitions {
      id
      from_places
      to_place
    }
  }
}""")
    assert result == {"workflows": [{"id": "document_review", "name": "document_review",
                                     "places": ["draft", "review", "approved"],
                                     "transitions": [{"id": "draft_to_review", "from_places": ["draft"],
                                                      "to_place": "review"},
                                                     {"id": "review_to_approved", "from_places": ["review"],
                                                      "to_place": "approved"}]}]}


def test_cost_analytics_as_written(tenant_a):
    tenant, gql = tenant_a
    _ledger(tenant)
    result = gql("""query CostAnalytics {
  costAnalytics {
    totalCost
    dailySpend
    monthlySpend
    providerBreakdown {
      provider
      cost
      requests
      averageCostPerRequest
    }
    modelBreakdown {
      model
      cost
      requests
      inputTokens
      outputTokens
    }
    projectedMonthlySpend
    costTrends {
      date
      cost
    }
  }
}""")["costAnalytics"]
    assert result["totalCost"] == pytest.approx(0.45)
    assert result["projectedMonthlySpend"] >= result["monthlySpend"] >= result["dailySpend"] > 0
    assert {p["provider"] for p in result["providerBreakdown"]} == {"openai", "anthropic"}
