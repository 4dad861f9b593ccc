"""The admin pages of agents, bindings and executions render for staff."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_admin_pages_render(admin_client):
    from apps.agents import dispatch, services
    from apps.workflows import services as workflow_services
    from tests import factories

    tenant = factories.tenant("ag-admin")
    agent = services.agent_create(tenant, name="shown", model="gpt-4o", user_template="x")
    workflow_services.workflow_save(tenant, definition={
        "id": "adm", "places": ["a", "b"], "initial_place": "a",
        "transitions": [{"id": "go", "from_places": ["a"], "to_place": "b"}]})
    binding = services.place_agent_create(tenant, agent=agent, workflow="adm", place="b")
    execution = dispatch.execution_start(tenant, agent=agent, input={"q": 1})
    for path in ("/admin/agents/agent/", f"/admin/agents/agent/{agent.id}/change/", "/admin/agents/placeagent/",
                 f"/admin/agents/placeagent/{binding.id}/change/", "/admin/agents/agentexecution/",
                 f"/admin/agents/agentexecution/{execution.id}/change/"):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert b"shown" in response.content or path.endswith("placeagent/")
    response = admin_client.post("/admin/agents/agentexecution/", {
        "action": "cancel", "_selected_action": [str(execution.id)]}, follow=True)
    assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.status == "cancelled"
