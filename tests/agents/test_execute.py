"""Agents outside workflows: POST /api/agents/{id}/execute/ through a real worker and the fake upstream."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.celery_worker import wait_until

from .conftest import events_of

pytestmark = pytest.mark.django_db(transaction=True)


def create_agent(api, **fields):
    body = {"name": "writer", "model": "gpt-4o", "prompts": {"system": "You write about {topic}.",
                                                             "user_template": "Write about {topic}."}, **fields}
    response = api.post("/api/agents/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_execute_streams_events_and_records_usage_and_cost(world):
    from apps.billing.models import UsageRecord

    agent = create_agent(world["api"])
    assert agent["llm"] == {"temperature": 0.7, "max_tokens": 1000}
    response = world["api"].post(f"/api/agents/{agent['id']}/execute/", {"input": {"topic": "owls"}, "wait": 20},
                                 format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed", body
    assert "Write about owls." in body["output_text"]
    assert body["messages"][0] == {"role": "system", "content": "You write about owls."}
    assert body["prompt_tokens"] > 0 and Decimal(str(body["cost"])) > 0
    assert body["provider"] and body["attempts"] == 1
    types = [e.type for e in events_of(body["id"])]
    assert types[0] == "agent_started" and types[-1] == "agent_completed" and "agent_content" in types
    completed = events_of(body["id"])[-1].data
    assert completed["agent_id"] == str(agent["id"])
    assert Decimal(completed["usage"]["cost"]) == Decimal(str(body["cost"]))
    sent = world["fake"].requests[-1]["json"]
    assert sent["temperature"] == 0.7 and sent["stream"] is True
    rows = wait_until(lambda: list(UsageRecord.objects.filter(request_id__in=body["request_ids"])), 15)
    assert rows and rows[0].agent_id == str(agent["id"]) and rows[0].cost == Decimal(str(body["cost"]))
