"""The product documents' content pipeline end to end through the worker: four agents bound to the
content_pipeline workflow fill the token step by step, the word_count function measures the article, and the
whole run shows as events, per-agent cost and spend by workflow in analytics."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.celery_worker import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
AGENTS = ["researcher", "outliner", "writer", "editor"]


def test_the_content_pipeline_runs_end_to_end(world):
    from apps.agents import selectors, services
    from apps.agents.models import AgentExecution
    from apps.billing.models import UsageRecord
    from apps.workflows import services as workflow_services
    from apps.workflows.models import Token, WorkflowEvent, WorkflowInstance

    tenant = world["tenant"]
    services.example_load(tenant, name="content_pipeline", model="gpt-4o")
    services.example_load(tenant, name="content_pipeline", model="gpt-4o")  # loading again changes nothing
    assert selectors.agent_list(tenant=tenant).count() == 4
    instance = workflow_services.instance_create(tenant, workflow_id="content_pipeline", data={
        "topic": "owls", "target_audience": "engineers", "content_type": "blog post"})
    done = wait_until(lambda: WorkflowInstance.objects.get(pk=instance.id).status != "running", 90)
    assert done and WorkflowInstance.objects.get(pk=instance.id).status == "completed"
    token = Token.objects.get(instance_id=instance.id)
    assert token.place == "published"
    data = token.data
    assert "Research: owls for engineers" in data["research"]
    assert "Create outline for blog post about owls" in data["outline"]
    assert data["outline"] in data["draft"] and data["draft"] in data["article"]
    assert data["stats"]["words"] == len(data["article"].split()) and data["stats"]["reading_time_minutes"] == 1
    runs = list(AgentExecution.objects.filter(instance_id=instance.id).select_related("agent").order_by("created_at"))
    assert [r.agent.name for r in runs] == AGENTS and all(r.status == "completed" for r in runs)
    assert all(r.cost > 0 for r in runs)
    editor = runs[-1]
    assert editor.tool_calls[0]["name"] == "word_count" and editor.tool_calls[0]["result"] == data["stats"]
    # One history entry per agent write, by that agent.
    writers = [h.actor for h in token.history.filter(kind="data_updated").order_by("id")]
    assert writers == ["agent:researcher", "agent:outliner", "agent:writer", "agent:editor", "agent:editor"]
    # The whole run as events, in order: every agent's start and end, and the transitions between them.
    events = list(WorkflowEvent.objects.filter(instance_id=instance.id).order_by("id"))
    flow = [(e.type, e.data.get("agent") or e.data.get("transition")) for e in events
            if e.type in ("agent_started", "agent_completed", "transition_fired")]
    assert flow == [("transition_fired", "start_research"),
                    ("agent_started", "researcher"), ("agent_completed", "researcher"),
                    ("transition_fired", "outline_ready"),
                    ("agent_started", "outliner"), ("agent_completed", "outliner"),
                    ("transition_fired", "draft_ready"),
                    ("agent_started", "writer"), ("agent_completed", "writer"),
                    ("transition_fired", "submit_for_edit"),
                    ("agent_started", "editor"), ("agent_completed", "editor"),
                    ("transition_fired", "publish")]
    # Per-agent cost in the ledger, and the spend by workflow in analytics.
    ids = [rid for r in runs for rid in r.request_ids]
    rows = wait_until(lambda: len(UsageRecord.objects.filter(request_id__in=ids)) == 4
                      and list(UsageRecord.objects.filter(request_id__in=ids)), 20)
    assert {(r.workflow_id, r.agent_id) for r in rows} == {("content_pipeline", str(r.agent_id)) for r in runs}
    assert sum(r.cost for r in rows) == sum(r.cost for r in runs)
    breakdown = world["api"].get("/api/analytics/breakdown/workflow").json()
    row = next(r for r in breakdown["results"] if r["key"] == "content_pipeline")
    assert Decimal(str(row["cost"])) == sum(r.cost for r in runs)
