"""The agents REST API: validation in the API's shape, the original's inline llm_provider (key encrypted in a
tenant provider, never returned), and tenant isolation on every endpoint."""

from __future__ import annotations

import uuid

import pytest

from .conftest import finished

pytestmark = pytest.mark.django_db(transaction=True)


def test_agent_crud_and_validation(world):
    api = world["api"]
    created = api.post("/api/agents/", {"name": "a1", "model": "cb:coding", "llm_config": {"temperature": 0.2},
                                        "circuit_breaker": {"routing_strategy": "cost_optimized"},
                                        "retry_config": {"max_attempts": 2}}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["llm"] == {"temperature": 0.2, "max_tokens": 1000}
    assert body["retry"]["max_attempts"] == 2 and body["retry"]["backoff_seconds"] == 10
    assert body["routing"] == {"routing_strategy": "cost_optimized"}
    bad = api.post("/api/agents/", {"name": "a2", "llm": {"temperature": 5, "nope": 1},
                                    "routing": {"routing_strategy": "fastest"},
                                    "prompts": {"user_template": "{__class__}"}, "output_schema": {"type": 7},
                                    "retry": {"retry_on_errors": ["bad_request"]}}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) >= {"llm", "routing", "user_template", "output_schema", "retry"}, bad.json()
    unknown = api.post("/api/agents/", {"name": "a3", "temprature": 1}, format="json")
    assert unknown.status_code == 400 and "temprature" in unknown.json()
    dup = api.post("/api/agents/", {"name": "a1"}, format="json")
    assert dup.status_code == 409 and dup.json()["code"] == "agent_exists"
    patched = api.patch(f"/api/agents/{body['id']}/", {"prompts": {"system": "Be brief."}}, format="json")
    assert patched.status_code == 200 and patched.json()["prompts"]["system"] == "Be brief."
    assert api.delete(f"/api/agents/{body['id']}/").status_code == 204


def test_inline_llm_provider_becomes_an_encrypted_tenant_provider(world):
    from apps.providers.models import Provider, ProviderCredential

    api = world["api"]
    secret = "sk-inline-" + uuid.uuid4().hex
    spec = {"provider_type": "openai", "model": "gpt-4o", "api_key": secret,
            "base_url": f"{world['fake'].url}/v1"}
    response = api.post("/api/agents/", {"name": "inline", "llm_provider": spec,
                                         "system_prompt": "You are a helpful content reviewer."}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert secret not in response.content.decode() and "llm_provider" not in body
    provider = Provider.objects.get(pk=body["provider"], tenant=world["tenant"])
    assert body["model"] == f"{provider.slug}/gpt-4o"
    credential = ProviderCredential.objects.get(provider=provider, name="from an agent")
    assert credential.secret() == secret and secret not in credential.encrypted_key
    again = api.post("/api/agents/", {"name": "inline2", "llm_provider": spec}, format="json")
    assert again.json()["provider"] == provider.id  # reused, the key not stored twice
    assert ProviderCredential.objects.filter(provider=provider, name="from an agent").count() == 1
    bad = api.post("/api/agents/", {"name": "inline3", "llm_provider": {"provider_type": "nope", "model": "m"}},
                   format="json")
    assert bad.status_code == 400 and "llm_provider" in bad.json()


def test_execute_without_wait_answers_202_and_validates_input(world):
    api = world["api"]
    agent = api.post("/api/agents/", {"name": "e", "model": "gpt-4o", "prompts": {"user_template": "Hi {who}"}},
                     format="json").json()
    missing = api.post(f"/api/agents/{agent['id']}/execute/", {"input": {}}, format="json")
    assert missing.status_code == 400 and missing.json()["code"] == "template_variable_missing"
    assert "{who}" in missing.json()["detail"]
    bad_wait = api.post(f"/api/agents/{agent['id']}/execute/", {"input": {"who": "x"}, "wait": 500}, format="json")
    assert bad_wait.status_code == 400 and "wait" in bad_wait.json()
    started = api.post(f"/api/agents/{agent['id']}/execute/", {"input": {"who": "x"}}, format="json")
    assert started.status_code == 202 and started.json()["status"] in ("pending", "running", "completed")
    assert finished(started.json()["id"]).status == "completed"
    listed = api.get(f"/api/agent-executions/?agent_id={agent['id']}&status=completed").json()
    assert [r["id"] for r in listed["results"]] == [started.json()["id"]]
    assert api.get("/api/agent-executions/?status=bogus").status_code == 400
    assert api.get("/api/agent-executions/?token_id=nope").status_code == 400


def test_tenant_isolation_on_every_endpoint(world):
    from apps.agents import services
    from apps.workflows import services as workflow_services

    mine = world["api"]
    theirs = world["other_api"]
    agent = services.agent_create(world["tenant"], name="private", model="gpt-4o", user_template="x")
    workflow_services.workflow_save(world["tenant"], definition={
        "id": "iso", "places": ["a", "b"], "initial_place": "a",
        "transitions": [{"id": "go", "from_places": ["a"], "to_place": "b"}]})
    binding = services.place_agent_create(world["tenant"], agent=agent, workflow="iso", place="b")
    run = finished(services.agent_execute(world["tenant"], agent=agent, input={}).id)
    for path in (f"/api/agents/{agent.id}/", f"/api/place-agents/{binding.id}/", f"/api/agent-executions/{run.id}/"):
        assert mine.get(path).status_code == 200
        assert theirs.get(path).status_code == 404
        assert theirs.patch(path, {"enabled": False}, format="json").status_code in (404, 405)
        assert theirs.delete(path).status_code in (404, 405)
    assert theirs.post(f"/api/agents/{agent.id}/execute/", {"input": {}}, format="json").status_code == 404
    assert theirs.post(f"/api/agent-executions/{run.id}/cancel/").status_code == 404
    assert theirs.get("/api/agents/").json()["results"] == []
    assert theirs.get("/api/place-agents/").json()["results"] == []
    assert theirs.get("/api/agent-executions/").json()["results"] == []
    foreign = theirs.post("/api/place-agents/", {"agent_id": agent.id, "workflow_id": "iso", "place": "b"},
                          format="json")
    assert foreign.status_code == 400 and "agent" in foreign.json()
    assert theirs.get("/api/agents/not-a-number/").status_code == 404
    assert mine.get(f"/api/agent-executions/{uuid.uuid4()}/").status_code == 404


def test_place_agent_validation(world):
    from apps.agents import services
    from apps.workflows import services as workflow_services

    agent = services.agent_create(world["tenant"], name="v", model="gpt-4o")
    workflow_services.workflow_save(world["tenant"], definition={
        "id": "val", "places": ["a", "b"], "initial_place": "a",
        "transitions": [{"id": "go", "from_places": ["a"], "to_place": "b"}]})
    response = world["api"].post("/api/place-agents/", {
        "agent_id": agent.id, "workflow_id": "val", "place": "zz", "auto_transition": "nope",
        "trigger_conditions": {"Bogus": 1}, "input_mapping": {"x": "elsewhere.y"},
        "output_mapping": {"data.x": "nowhere", "other.y": "output"}, "schedule": {"interval_seconds": -1}},
        format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"place", "auto_transition", "trigger_conditions", "input_mapping",
                                    "output_mapping", "schedule"}, response.json()
    missing = world["api"].post("/api/place-agents/", {"agent_id": agent.id, "workflow_id": "nope", "place": "a"},
                                format="json")
    assert missing.status_code == 400 and "workflow" in missing.json()


def test_the_operator_caps_how_long_execute_waits(settings):
    from apps.agents.api.serializers import AgentExecuteSerializer

    settings.AGENTS_EXECUTE_WAIT_SECONDS = 2.0
    for wait, expected in ((True, 2.0), (45, 2.0), (1.5, 1.5), (False, 0.0)):
        serializer = AgentExecuteSerializer(data={"wait": wait})
        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data["wait"] == expected, wait
    assert not AgentExecuteSerializer(data={"wait": 61}).is_valid()  # the API's own limit still answers 400
