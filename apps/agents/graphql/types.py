"""GraphQL types of agents (the documents' `Agent`), place-agent bindings (the original's `PlaceAgentConfig`)
and agent runs (`AgentExecution`). An agent's inline provider key is write-only: no type has a field for it."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON

from ..models import FINISHED

# Joins every field below reads, so a list costs one query whatever it selects.
AGENT_JOINS = ("provider",)
PLACE_AGENT_JOINS = ("agent", "agent__provider")
EXECUTION_JOINS = ("agent", "agent__provider", "place_agent")


class LlmConfig(graphene.ObjectType):
    """The agent's LLM settings, defaults filled in (temperature 0.7, maxTokens 1000)."""

    temperature = graphene.Float()
    max_tokens = graphene.Int()
    top_p = graphene.Float()
    frequency_penalty = graphene.Float()
    presence_penalty = graphene.Float()
    stop_sequences = graphene.List(graphene.NonNull(graphene.String), required=True)

    @staticmethod
    def of(settings: dict) -> LlmConfig:
        stop = settings.get("stop")
        return LlmConfig(**{k: settings.get(k) for k in ("temperature", "max_tokens", "top_p", "frequency_penalty",
                                                         "presence_penalty")},
                         stop_sequences=[stop] if isinstance(stop, str) else list(stop or []))


class AgentPrompts(graphene.ObjectType):
    system = graphene.String(required=True)
    user_template = graphene.String(required=True)
    context_instructions = graphene.String(required=True)


class AgentLlmProvider(graphene.ObjectType):
    """The provider an agent's inline `llmProvider` became (its key is never returned)."""

    id = graphene.ID(required=True)
    provider_type = graphene.String(required=True)
    model = graphene.String(required=True)
    base_url = graphene.String(required=True)


class Agent(graphene.ObjectType):
    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    status = graphene.String(required=True, description="active or disabled.")
    enabled = graphene.Boolean(required=True)
    model = graphene.String(required=True, description="What the gateway routes (a catalogue id, provider/model, "
                                                       "a virtual model).")
    llm_provider = graphene.Field(AgentLlmProvider, description="Set when created with an inline llmProvider.")
    llm_config = graphene.Field(LlmConfig, required=True)
    llm = JSON(required=True, description="The same settings as an object, in the REST API's names.")
    circuit_breaker = JSON(required=True, source="routing", description="Routing options (the /v1 "
                                                                        "circuit_breaker object).")
    prompts = graphene.Field(AgentPrompts, required=True)
    system_prompt = graphene.String(required=True)
    user_template = graphene.String(required=True)
    capabilities = graphene.List(graphene.NonNull(graphene.String), required=True)
    tools = graphene.List(graphene.NonNull(graphene.ID), required=True, description="Ids of the functions it may "
                                                                                    "call.")
    json_mode = graphene.Boolean(required=True)
    output_schema = JSON()
    max_tool_steps = graphene.Int(required=True)
    timeout_seconds = graphene.Float(required=True)
    retry_config = JSON(required=True, description="maxAttempts, backoffSeconds, retryOnErrors (REST names).")
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_status(agent, info):
        return "active" if agent.enabled else "disabled"

    @staticmethod
    def resolve_llm_provider(agent, info):
        provider = agent.provider
        if provider is None:
            return None
        prefix = f"{provider.slug}/"
        model = agent.model[len(prefix):] if agent.model.startswith(prefix) else agent.model
        return AgentLlmProvider(id=provider.pk, provider_type=provider.type, model=model,
                                base_url=provider.effective_base_url)

    @staticmethod
    def resolve_llm_config(agent, info):
        return LlmConfig.of(agent.llm_settings)

    @staticmethod
    def resolve_llm(agent, info):
        return agent.llm_settings

    @staticmethod
    def resolve_prompts(agent, info):
        return AgentPrompts(system=agent.system_prompt, user_template=agent.user_template,
                            context_instructions=agent.context_instructions)

    @staticmethod
    def resolve_retry_config(agent, info):
        return agent.retry_settings


class PlaceAgentConfig(graphene.ObjectType):
    """An agent bound to a workflow place: it runs on every token entering the place (conditions holding)."""

    id = graphene.ID(required=True)
    agent_id = graphene.ID(required=True)
    agent = graphene.Field(Agent, required=True)
    workflow_id = graphene.String(required=True, source="workflow")
    place_id = graphene.String(required=True, source="place")
    trigger_conditions = JSON(description="A rules-engine condition over the token (null: always).")
    input_mapping = JSON(required=True, description='{template variable: "data.x" | "metadata.y" | …}')
    output_mapping = JSON(required=True, description='{"data.x" | "metadata.y": "output" | "output.field" | …}')
    functions = JSON(required=True, description="Function steps after the output is written.")
    auto_transition = graphene.String(description="Fired after a successful run.")
    schedule = JSON(required=True)
    retry_config = JSON(required=True, source="retry", description="Overrides the agent's retry settings.")
    enabled = graphene.Boolean(required=True)
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_auto_transition(binding, info):
        return binding.auto_transition or None


class AgentUsage(graphene.ObjectType):
    prompt_tokens = graphene.Int(required=True)
    completion_tokens = graphene.Int(required=True)
    total_tokens = graphene.Int(required=True)
    cost = graphene.Float(required=True, description="USD.")


class AgentExecution(graphene.ObjectType):
    """One run of an agent: pending, running, then completed, failed, timeout or cancelled."""

    id = graphene.ID(required=True)
    agent_id = graphene.ID(required=True)
    agent = graphene.Field(Agent, required=True)
    place_agent_id = graphene.ID(description="The binding that started it (null: executeAgent).")
    status = graphene.String(required=True)
    finished = graphene.Boolean(required=True)
    workflow_id = graphene.String(source="workflow")
    instance_id = graphene.ID()
    token_id = graphene.ID()
    resource_id = graphene.ID(source="token_id", description="Same as tokenId (the original's name).")
    place_id = graphene.String(description="The place its binding watches.")
    input = JSON(required=True, description="Its template variables.")
    input_data = JSON(required=True, source="input", description="Same as input (the original's name).")
    output = JSON(description="The output: parsed JSON in json mode, else the text.")
    output_text = graphene.String(required=True)
    messages = JSON(required=True, description="The conversation sent (rendered prompts).")
    tool_calls = JSON(required=True)
    usage = graphene.Field(AgentUsage, required=True)
    cost = graphene.Float(required=True, description="USD.")
    model_requested = graphene.String(required=True)
    model = graphene.String(required=True, description="The model that served.")
    provider = graphene.String(required=True, description="The provider that served.")
    attempts = graphene.Int(required=True)
    max_attempts = graphene.Int(required=True)
    transition = JSON(required=True, description="The automatic transition's outcome.")
    error = graphene.String()
    error_message = graphene.String(description="Same as error (the original's name).")
    error_code = graphene.String()
    created_at = graphene.DateTime(required=True)
    started_at = graphene.DateTime()
    finished_at = graphene.DateTime()
    completed_at = graphene.DateTime(source="finished_at", description="Same as finishedAt.")
    duration_ms = graphene.Float()

    @staticmethod
    def resolve_finished(execution, info):
        return execution.status in FINISHED

    @staticmethod
    def resolve_place_id(execution, info):
        return execution.place_agent.place if execution.place_agent_id else None

    @staticmethod
    def resolve_output(execution, info):
        return execution.output_json if execution.output_json is not None else (execution.output_text or None)

    @staticmethod
    def resolve_usage(execution, info):
        return AgentUsage(prompt_tokens=execution.prompt_tokens, completion_tokens=execution.completion_tokens,
                          total_tokens=execution.total_tokens, cost=float(execution.cost))

    @staticmethod
    def resolve_cost(execution, info):
        return float(execution.cost)

    @staticmethod
    def resolve_error(execution, info):
        return execution.error or None

    resolve_error_message = resolve_error

    @staticmethod
    def resolve_error_code(execution, info):
        return execution.error_code or None
