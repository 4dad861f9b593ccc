"""Agents over GraphQL: the documents' createAgent as written, the camelCase forms, place-agent bindings,
triggerPlaceAgents, the instance's `agents`, cross-tenant ids, atomicity and query counts — and, through a real
Celery worker against a fake OpenAI upstream, executeAgent with `wait` and triggered runs that finish."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.agents import services as agent_services
from apps.agents.models import Agent, AgentExecution, PlaceAgent
from apps.providers.models import Provider, ProviderCredential
from apps.workflows.models import Token, TokenStatus
from tests import factories
from tests.celery_worker import Worker, wait_until
from tests.fakes.openai import FakeOpenAI

from .conftest import caller_for, codes

CREATE_AGENT = """mutation($input: AgentDefinitionInput!) { createAgent(input: $input) {
  id name description status model enabled llmConfig { temperature maxTokens topP stopSequences }
  prompts { system userTemplate contextInstructions } systemPrompt userTemplate tools circuitBreaker retryConfig
  llmProvider { id providerType model baseUrl } } }"""
BIND = """mutation($input: PlaceAgentConfigInput!) { createPlaceAgentConfig(input: $input) {
  id agentId agent { name } workflowId placeId triggerConditions inputMapping outputMapping autoTransition schedule
  retryConfig enabled } }"""
EXECUTION_FIELDS = """id agentId agent { id name llmProvider { providerType } } placeAgentId placeId status finished
  workflowId instanceId tokenId resourceId input output outputText usage { promptTokens totalTokens cost } cost
  model provider attempts error errorMessage errorCode createdAt completedAt"""
PIPELINE = {"id": "pipeline", "name": "pipeline", "places": ["research", "write", "done"],
            "transitions": [{"id": "researched", "fromPlaces": ["research"], "toPlace": "write"},
                            {"id": "written", "fromPlaces": ["write"], "toPlace": "done"}],
            "initialPlace": "research"}


def _agent(gql, name="researcher", **fields):
    body = {"name": name, "model": "gpt-4o", "prompts": {"system": "You research {topic}.",
                                                         "userTemplate": "Research: {topic}"}, **fields}
    return gql(CREATE_AGENT, {"input": body})["createAgent"]


def _pipeline(gql):
    gql("mutation($i: WorkflowDefinitionInput!) { createWorkflow(input: $i) { id } }", {"i": PIPELINE})


def _bind(gql, agent_id, place="research", **fields):
    body = {"agentId": agent_id, "workflowId": "pipeline", "placeId": place, **fields}
    return gql(BIND, {"input": body})["createPlaceAgentConfig"]


def _token(gql, place="research", data=None):
    return gql("""mutation($place: String!, $data: JSON) { createToken(input: {workflowId: "pipeline",
                initialPlace: $place, data: $data}) { id instanceId } }""",
               {"place": place, "data": data or {"topic": "owls"}})["createToken"]


# ---- createAgent -----------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_create_agent_as_the_documents_print_it(tenant_a):
    tenant, gql = tenant_a
    response = gql.post("""# Create an AI agent
mutation {
  createAgent(input: {
    name: "Content Reviewer"
    description: "Reviews document content"
    llm_provider: {
      provider_type: "openai"
      model: "gpt-4"
      api_key: "your-key"
    }
    system_prompt: "You are a helpful content reviewer."
  }) {
    id
    name
    status
  }
}""")
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    created = body["data"]["createAgent"]
    assert created["name"] == "Content Reviewer" and created["status"] == "active"
    agent = Agent.objects.get(pk=created["id"], tenant=tenant)
    assert agent.system_prompt == "You are a helpful content reviewer." and agent.provider.type == "openai"
    # The key is the provider's encrypted credential, and no field answers it.
    credential = ProviderCredential.objects.get(provider=agent.provider)
    assert credential.secret() == "your-key" and "your-key" not in credential.encrypted_key
    full = gql("query($id: ID!) { agent(id: $id) { model systemPrompt llmProvider { providerType model baseUrl } } }",
               {"id": created["id"]})["agent"]
    assert full["llmProvider"]["providerType"] == "openai" and full["llmProvider"]["model"] == "gpt-4"
    assert full["model"] == f"{agent.provider.slug}/gpt-4" and "your-key" not in str(full)


@pytest.mark.django_db
def test_create_agent_in_camel_case_with_settings_routing_and_tools(tenant_a):
    _, gql = tenant_a
    tool = gql("""mutation { createFunction(input: {name: "word_count", runtime: "python",
                config: {callable: "apps.functions.builtins.word_count"}}) { id } }""")["createFunction"]
    agent = _agent(gql, description="Finds things", llmConfig={"temperature": 0.2, "maxTokens": 300,
                                                               "stopSequences": ["END"]},
                   userTemplate="ignored: prompts.userTemplate wins",
                   circuitBreaker={"routing_strategy": "cost_optimized"},
                   retryConfig={"maxAttempts": 2, "retryOnErrors": ["timeout"]}, tools=[tool["id"]])
    assert agent["status"] == "active" and agent["model"] == "gpt-4o" and agent["llmProvider"] is None
    assert agent["llmConfig"] == {"temperature": 0.2, "maxTokens": 300, "topP": None, "stopSequences": ["END"]}
    assert agent["prompts"] == {"system": "You research {topic}.", "userTemplate": "Research: {topic}",
                                "contextInstructions": ""}
    assert agent["systemPrompt"] == "You research {topic}." and agent["tools"] == [tool["id"]]
    assert agent["circuitBreaker"] == {"routing_strategy": "cost_optimized"}
    assert agent["retryConfig"] == {"max_attempts": 2, "backoff_seconds": 10, "retry_on_errors": ["timeout"]}
    listed = gql("{ agents { id name status } }")["agents"]
    assert listed == [{"id": agent["id"], "name": "researcher", "status": "active"}]


@pytest.mark.django_db
def test_a_bad_agent_changes_nothing(tenant_a):
    tenant, gql = tenant_a
    providers = Provider.objects.count()
    # The inline provider is made first; the bad setting after it must undo it.
    data, errors = gql.errors(CREATE_AGENT, {"input": {
        "name": "hot", "llmConfig": {"temperature": 5},
        "llmProvider": {"providerType": "openai", "model": "gpt-4o", "apiKey": "sk-secret-1"}}})
    assert data == {"createAgent": None} and codes(errors) == ["VALIDATION_ERROR"]
    assert errors[0]["extensions"]["param"] == "llm" and "sk-secret-1" not in str(errors)
    assert Provider.objects.count() == providers and not Agent.objects.filter(tenant=tenant).exists()
    for bad, param in (({"prompts": {"system": "Hello {_private}"}}, "system_prompt"),
                       ({"circuitBreaker": {"routing_strategy": "nonsense"}}, "routing"),
                       ({"tools": ["no-such-function"]}, "tools"),
                       ({"retryConfig": {"maxAttempts": 99}}, "retry")):
        _, errors = gql.errors(CREATE_AGENT, {"input": {"name": "bad", **bad}})
        assert codes(errors) == ["VALIDATION_ERROR"] and errors[0]["extensions"]["param"] == param, errors
    _, errors = gql.errors(CREATE_AGENT, {"input": {"name": "twice", "systemPrompt": "a", "system_prompt": "b"}})
    assert codes(errors) == ["VALIDATION_ERROR"]
    _agent(gql, name="taken")
    _, errors = gql.errors(CREATE_AGENT, {"input": {"name": "taken"}})
    assert codes(errors) == ["AGENT_EXISTS"] and errors[0]["extensions"]["status"] == 409
    assert list(Agent.objects.filter(tenant=tenant).values_list("name", flat=True)) == ["taken"]


@pytest.mark.django_db
def test_the_documents_multi_agent_task_lists_the_pipelines_agents(tenant_a):
    tenant, gql = tenant_a
    agent_services.example_load(tenant, name="content_pipeline")  # its workflow, functions, agents and bindings
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
    bound = PlaceAgent.objects.filter(tenant=tenant, workflow="content_pipeline").select_related("agent")
    assert multi_agent["agents"] == [{"id": str(b.agent_id), "role": b.agent.name, "status": "idle"}
                                     for b in bound.order_by("id")]
    assert [a["role"] for a in multi_agent["agents"]][:2] == ["researcher", "outliner"]


# ---- place agents ----------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_create_place_agent_config_and_list_by_place(tenant_a):
    tenant, gql = tenant_a
    _pipeline(gql)
    researcher, writer = _agent(gql), _agent(gql, name="writer")
    binding = _bind(gql, researcher["id"], triggerConditions={"type": "FieldExists", "field": "topic"},
                    inputMapping={"topic": "data.topic"}, outputMapping={"data.research": "output"},
                    autoTransition="researched", schedule={"initialDelaySeconds": 0, "maxExecutions": 3},
                    retryConfig={"maxAttempts": 1})
    assert binding["agent"] == {"name": "researcher"} and binding["placeId"] == "research"
    assert binding["workflowId"] == "pipeline" and binding["autoTransition"] == "researched"
    assert binding["schedule"] == {"initial_delay_seconds": 0, "max_executions": 3} and binding["enabled"]
    _bind(gql, writer["id"], place="write")
    by_place = gql('{ placeAgentConfigs(placeId: "research") { id agent { name } } }')["placeAgentConfigs"]
    assert by_place == [{"id": binding["id"], "agent": {"name": "researcher"}}]
    both = gql('{ placeAgentConfigs(workflowId: "pipeline") { placeId } }')["placeAgentConfigs"]
    assert sorted(b["placeId"] for b in both) == ["research", "write"]
    # Bad bindings: every problem by field, nothing saved.
    _, errors = gql.errors(BIND, {"input": {"agentId": researcher["id"], "workflowId": "pipeline",
                                            "placeId": "nowhere", "autoTransition": "no_such"}})
    assert codes(errors) == ["VALIDATION_ERROR"]
    assert set(errors[0]["extensions"]["fields"]) == {"place", "auto_transition"}
    _, errors = gql.errors(BIND, {"input": {"agentId": researcher["id"], "workflowId": "nope", "placeId": "x"}})
    assert codes(errors) == ["VALIDATION_ERROR"] and "workflow" in errors[0]["extensions"]["fields"]
    assert PlaceAgent.objects.filter(tenant=tenant).count() == 2


@pytest.mark.django_db
def test_trigger_place_agents_starts_the_bindings_of_the_tokens_place(tenant_a):
    _, gql = tenant_a
    _pipeline(gql)
    researcher, picky, writer = _agent(gql), _agent(gql, name="picky"), _agent(gql, name="writer")
    binding = _bind(gql, researcher["id"])
    _bind(gql, picky["id"], triggerConditions={"type": "FieldEquals", "field": "topic", "value": "cats"})
    _bind(gql, writer["id"], place="write")
    token = _token(gql)
    started = gql(f"mutation($id: ID!) {{ triggerPlaceAgents(tokenId: $id) {{ {EXECUTION_FIELDS} }} }}",
                  {"id": token["id"]})["triggerPlaceAgents"]
    assert [e["agent"]["name"] for e in started] == ["researcher"]  # picky's condition fails; writer is elsewhere
    execution = started[0]
    assert (execution["status"], execution["finished"], execution["placeId"], execution["placeAgentId"]) == (
        "pending", False, "research", binding["id"])
    assert execution["tokenId"] == execution["resourceId"] == token["id"]
    assert execution["instanceId"] == token["instanceId"] and execution["workflowId"] == "pipeline"
    assert execution["error"] is None and execution["output"] is None and execution["usage"]["totalTokens"] == 0
    again = gql("mutation($id: ID!) { triggerPlaceAgents(tokenId: $id) { id } }", {"id": token["id"]})
    listed = gql("query($id: ID!) { tokenExecutions(tokenId: $id) { id agentId } }", {"id": token["id"]})
    assert {e["id"] for e in listed["tokenExecutions"]} == {execution["id"], again["triggerPlaceAgents"][0]["id"]}
    got = gql(f"query($id: ID!) {{ agentExecution(id: $id) {{ {EXECUTION_FIELDS} }} }}", {"id": execution["id"]})
    assert got["agentExecution"] == execution
    filtered = gql("query($a: ID!) { agentExecutions(agentId: $a, status: \"pending\") { id } }",
                   {"a": researcher["id"]})["agentExecutions"]
    assert len(filtered) == 2
    # The token moved on: its new place's agents run.
    gql("""mutation($id: ID!) { fireTransition(input: {tokenId: $id, transitionId: "researched"}) { id } }""",
        {"id": token["id"]})
    moved = gql("mutation($id: ID!) { triggerPlaceAgents(tokenId: $id) { placeId agent { name } } }",
                {"id": token["id"]})["triggerPlaceAgents"]
    assert moved == [{"placeId": "write", "agent": {"name": "writer"}}]
    # A consumed token's place agents do not run.
    Token.objects.filter(pk=token["id"]).update(status=TokenStatus.CONSUMED)
    _, errors = gql.errors("mutation($id: ID!) { triggerPlaceAgents(tokenId: $id) { id } }", {"id": token["id"]})
    assert codes(errors) == ["TOKEN_NOT_ACTIVE"] and errors[0]["extensions"]["status"] == 409
    _, errors = gql.errors('{ agentExecutions(status: "bogus") { id } }')
    assert codes(errors) == ["VALIDATION_ERROR"]


@pytest.mark.django_db
def test_workflow_instance_agents_are_the_bound_place_agents(tenant_a):
    _, gql = tenant_a
    _pipeline(gql)
    researcher, writer = _agent(gql), _agent(gql, name="writer")
    first = _bind(gql, researcher["id"])
    second = _bind(gql, writer["id"], place="write")
    instance = gql("""mutation { createWorkflowInstance(input: {workflowId: "pipeline", initialData: {topic: "owls"}})
                   { id agents { id role status place placeAgentId executionId } } }""")["createWorkflowInstance"]
    # No execution yet in this test's transaction (the listener starts them after commit): idle.
    assert instance["agents"] == [
        {"id": researcher["id"], "role": "researcher", "status": "idle", "place": "research",
         "placeAgentId": first["id"], "executionId": None},
        {"id": writer["id"], "role": "writer", "status": "idle", "place": "write", "placeAgentId": second["id"],
         "executionId": None}]
    token = gql("query($id: ID!) { workflowInstance(id: $id) { tokens { id } } }",
                {"id": instance["id"]})["workflowInstance"]["tokens"][0]
    started = gql("mutation($id: ID!) { triggerPlaceAgents(tokenId: $id) { id } }",
                  {"id": token["id"]})["triggerPlaceAgents"][0]
    agents = gql("query($id: ID!) { workflowInstance(id: $id) { agents { role status executionId } } }",
                 {"id": instance["id"]})["workflowInstance"]["agents"]
    assert agents == [{"role": "researcher", "status": "pending", "executionId": started["id"]},
                      {"role": "writer", "status": "idle", "executionId": None}]


# ---- isolation and query counts ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_another_tenants_agents_executions_and_tokens_are_not_found(tenant_a, tenant_b):
    _, gql_a = tenant_a
    _, gql_b = tenant_b
    _pipeline(gql_a)
    _pipeline(gql_b)
    agent = _agent(gql_a)
    binding = _bind(gql_a, agent["id"])
    token = _token(gql_a)
    execution = gql_a("mutation($id: ID!) { triggerPlaceAgents(tokenId: $id) { id } }",
                      {"id": token["id"]})["triggerPlaceAgents"][0]
    probes = [
        ("query($id: ID!) { agent(id: $id) { id } }", {"id": agent["id"]}),
        ("query($id: ID!) { agentExecution(id: $id) { id } }", {"id": execution["id"]}),
        ("query($id: ID!) { tokenExecutions(tokenId: $id) { id } }", {"id": token["id"]}),
        ("query($id: ID!) { resourceExecutions(resourceId: $id) { id } }", {"id": token["id"]}),
        ("query($id: ID!) { agentExecutions(agentId: $id) { id } }", {"id": agent["id"]}),
        ("query($id: ID!) { agentExecutions(tokenId: $id) { id } }", {"id": token["id"]}),
        ("query($id: ID!) { agentExecutions(instanceId: $id) { id } }", {"id": token["instanceId"]}),
        ("query($id: ID!) { placeAgentConfigs(agentId: $id) { id } }", {"id": agent["id"]}),
        ("mutation($id: ID!) { triggerPlaceAgents(tokenId: $id) { id } }", {"id": token["id"]}),
        ("mutation($id: ID!) { executeAgent(input: {agentId: $id, input: {topic: \"x\"}}) { id } }",
         {"id": agent["id"]}),
        ('mutation($id: ID!) { createPlaceAgentConfig(input: {agentId: $id, workflowId: "pipeline", '
         'placeId: "research"}) { id } }', {"id": agent["id"]}),
        ("query { agentExecution(id: \"not-a-uuid\") { id } }", None),
        ("query { agent(id: \"12abc\") { id } }", None),
    ]
    for query, variables in probes:
        data, errors = gql_b.errors(query, variables)
        assert codes(errors) == ["NOT_FOUND"], (query, errors)
        assert not data or all(value is None for value in data.values()), (query, data)
    # …and the lists show tenant B nothing of A's.
    lists = gql_b("{ agents { id } placeAgentConfigs { id } agentExecutions { id } }")
    assert lists == {"agents": [], "placeAgentConfigs": [], "agentExecutions": []}
    assert AgentExecution.objects.filter(place_agent_id=binding["id"]).count() == 1


@pytest.mark.django_db
def test_lists_cost_the_same_queries_for_more_items(tenant_a):
    tenant, gql = tenant_a
    _pipeline(gql)
    query = f"""{{ agents {{ id llmConfig {{ temperature }} llmProvider {{ model }} }}
      placeAgentConfigs {{ id agent {{ name llmProvider {{ providerType }} }} }}
      agentExecutions {{ {EXECUTION_FIELDS} }}
      workflowInstances {{ id agents {{ id role status }} }} }}"""

    def grow(n):
        for _ in range(n):
            name = f"a{uuid.uuid4().hex[:6]}"
            agent = _agent(gql, name=name, llmProvider={"providerType": "openai", "model": "gpt-4o"})
            _bind(gql, agent["id"])
            token = _token(gql)
            gql("mutation($id: ID!) { triggerPlaceAgents(tokenId: $id) { id } }", {"id": token["id"]})

    def count():
        with CaptureQueriesContext(connection) as queries:
            gql(query)
        return len(queries)

    grow(2)
    few = count()
    grow(4)
    many = count()
    assert few == many, (few, many)
    assert Agent.objects.filter(tenant=tenant).count() == 6


# ---- running: a real worker, a fake OpenAI upstream ---------------------------------------------------------------
@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gql_worker(django_db_setup, tmp_path_factory):
    worker = Worker(tmp_path_factory.mktemp("agql-worker"))
    assert wait_until(lambda: " ready." in worker.output(), 120), worker.output()[-3000:]
    yield worker
    worker.stop()


@pytest.fixture
def running(transactional_db, catalogue, fake, gql_worker):
    """A fresh tenant whose own OpenAI provider is the fake, its admin caller, and runs that really happen."""
    suffix = uuid.uuid4().hex[:6]
    tenant, _, _ = factories.tenant_on_fake_openai(f"agql-{suffix}", fake, provider_slug=f"fk-{suffix}")
    _, secret = factories.api_key(tenant, scopes=["admin"])
    return tenant, caller_for(secret)


def test_execute_agent_with_wait_answers_the_finished_run(running, fake):
    _, gql = running
    agent = _agent(gql)
    done = gql(f"""mutation($id: ID!) {{ executeAgent(input: {{agentId: $id, input: {{topic: "owls"}}, wait: 20}})
                {{ {EXECUTION_FIELDS} }} }}""", {"id": agent["id"]})["executeAgent"]
    assert done["status"] == "completed" and done["finished"], done
    assert "Research: owls" in done["outputText"] and done["output"] == done["outputText"]
    assert done["usage"]["promptTokens"] > 0 and done["cost"] > 0 and done["attempts"] == 1
    assert done["placeId"] is None and done["tokenId"] is None and done["completedAt"]
    assert fake.requests[-1]["json"]["messages"][0] == {"role": "system", "content": "You research owls."}
    # Without wait: the pending execution at once; it finishes on the worker.
    pending = gql("""mutation($id: ID!) { executeAgent(input: {agentId: $id, inputData: {topic: "bats"}})
                   { id status } }""", {"id": agent["id"]})["executeAgent"]
    assert pending["status"] in ("pending", "running")
    assert wait_until(lambda: gql("query($id: ID!) { agentExecution(id: $id) { status } }",
                                  {"id": pending["id"]})["agentExecution"]["status"] == "completed", 30)
    # A template variable the input lacks: refused before any run.
    _, errors = gql.errors("mutation($id: ID!) { executeAgent(input: {agentId: $id, input: {}}) { id } }",
                           {"id": agent["id"]})
    assert codes(errors) and errors[0]["extensions"]["status"] == 400
    _, errors = gql.errors("mutation($id: ID!) { executeAgent(input: {agentId: $id, wait: 99}) { id } }",
                           {"id": agent["id"]})
    assert codes(errors) == ["VALIDATION_ERROR"]
    assert AgentExecution.objects.filter(agent_id=agent["id"]).count() == 2


def test_place_agents_run_on_arrival_and_show_in_the_instances_agents(running):
    _, gql = running
    _pipeline(gql)
    agent = _agent(gql)
    _bind(gql, agent["id"], inputMapping={"topic": "data.topic"}, outputMapping={"data.research": "output"},
          autoTransition="researched")
    instance = gql("""mutation { createWorkflowInstance(input: {workflowId: "pipeline", initialData: {topic: "owls"}})
                   { id agents { role status executionId } tokens { id } } }""")["createWorkflowInstance"]
    # The arrival started it once the instance committed, before the answer was resolved.
    [ref] = instance["agents"]
    assert ref["role"] == "researcher" and ref["status"] in ("pending", "running", "completed") and ref["executionId"]
    token_id = instance["tokens"][0]["id"]

    def state():
        return gql("""query($i: ID!, $t: ID!) { workflowInstance(id: $i) { agents { status } currentPlace }
                      tokenExecutions(tokenId: $t) { id status output } }""", {"i": instance["id"], "t": token_id})

    assert wait_until(lambda: state()["workflowInstance"]["agents"][0]["status"] == "completed", 30), state()
    final = state()
    assert final["workflowInstance"]["currentPlace"] == "write"  # its automatic transition fired
    assert [e["id"] for e in final["tokenExecutions"]] == [ref["executionId"]]
    token = gql("query($id: ID!) { token(id: $id) { data } }", {"id": token_id})["token"]
    assert "Research: owls" in token["data"]["research"]


def test_execute_function_with_wait(running):
    _, gql = running
    function = gql("""mutation { createFunction(input: {name: "wc", runtime: "python",
                    config: {callable: "apps.functions.builtins.word_count"},
                    inputSchema: {type: "object", properties: {text: {type: "string"}}, required: ["text"]}})
                    { id } }""")["createFunction"]
    done = gql("""mutation($id: ID!) { executeFunction(input: {functionId: $id, input: {text: "one two three"},
                wait: true}) { id status finished output functionName function { name } trigger } }""",
               {"id": function["id"]})["executeFunction"]
    assert done["status"] == "completed" and done["finished"] and done["output"]["words"] == 3, done
    assert done["functionName"] == "wc" == done["function"]["name"] and done["trigger"] == "api"
    listed = gql("query($id: ID!) { functionExecutions(functionId: $id) { id status } }",
                 {"id": function["id"]})["functionExecutions"]
    assert listed == [{"id": done["id"], "status": "completed"}]
