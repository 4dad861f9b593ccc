"""Tool use: the model's tool calls run as function executions and their results go back as `tool` messages."""

from __future__ import annotations

import pytest

from .conftest import events_of, finished

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_model_calls_a_function_and_answers_from_its_result(world):
    from apps.agents import services
    from apps.functions import services as function_services
    from apps.functions.models import FunctionExecution

    echo, _ = function_services.function_create(world["tenant"], fields={
        "name": "echo", "runtime": "python", "description": "Echo the input.",
        "config": {"callable": "apps.functions.builtins.echo"}})
    agent = services.agent_create(world["tenant"], name="tooler", model="gpt-4o", user_template="look up {q}",
                                  tools=[str(echo.id)])
    run = finished(services.agent_execute(world["tenant"], agent=agent, input={"q": "owls"}).id)
    assert run.status == "completed", run.error
    call = run.tool_calls[0]
    assert call["name"] == "echo" and call["arguments"] == {"query": "look up owls"}
    assert call["status"] == "completed" and call["result"] == {"query": "look up owls"}
    assert run.output_text.startswith("Tool said: ") and "look up owls" in run.output_text
    assert len(run.request_ids) == 2
    types = [e.type for e in events_of(run.id)]
    assert types.index("agent_tool_call") < types.index("agent_tool_result") < types.index("agent_completed")
    function_run = FunctionExecution.objects.get(pk=call["function_execution_id"])
    assert function_run.trigger == "agent" and function_run.agent_execution_id == str(run.id)
    second = world["fake"].requests[-1]["json"]["messages"]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "echo"
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == call["id"]


def test_tools_must_be_the_tenants_enabled_functions(world):
    from apps.functions import services as function_services

    theirs, _ = function_services.function_create(world["other"], fields={
        "name": "echo", "runtime": "python", "config": {"callable": "apps.functions.builtins.echo"}})
    response = world["api"].post("/api/agents/", {"name": "x", "tools": [str(theirs.id)]}, format="json")
    assert response.status_code == 400 and "tools" in response.json()
