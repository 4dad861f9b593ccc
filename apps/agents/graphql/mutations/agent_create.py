"""`createAgent`: an agent — name, description, model or the original's inline `llmProvider {providerType,
model, apiKey, baseUrl}` (the key stored encrypted on the tenant's provider, never returned), `llmConfig`,
`prompts` / `systemPrompt` / `userTemplate`, tools, routing options. Validated as the REST API validates it (the
documents' snake_case input — `llm_provider`, `system_prompt` — is accepted as written)."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON, mutation

from ... import services
from ...api.serializers import AgentSerializer
from ..inputs import SNAKE, AgentRetryInput, given, present, retry_of
from ..types import Agent


class LlmProviderInput(graphene.InputObjectType):
    provider_type = graphene.String(description="openai, anthropic, …")
    model = graphene.String(required=True)
    api_key = graphene.String(description="Write-only: stored encrypted on the tenant's provider.")
    base_url = graphene.String()
    provider_type_snake = graphene.String(name="provider_type", description=SNAKE)
    api_key_snake = graphene.String(name="api_key", description=SNAKE)
    base_url_snake = graphene.String(name="base_url", description=SNAKE)


class LlmConfigInput(graphene.InputObjectType):
    temperature = graphene.Float(description="0…2 (default 0.7).")
    max_tokens = graphene.Int(description="Default 1000.")
    top_p = graphene.Float()
    frequency_penalty = graphene.Float()
    presence_penalty = graphene.Float()
    stop_sequences = graphene.List(graphene.NonNull(graphene.String))


class AgentPromptsInput(graphene.InputObjectType):
    system = graphene.String()
    user_template = graphene.String(description="Default \"{input_data}\".")
    context_instructions = graphene.String()


class AgentDefinitionInput(graphene.InputObjectType):
    name = graphene.String(required=True)
    description = graphene.String()
    model = graphene.String(description="Any name the gateway resolves (default auto); or give llmProvider.")
    llm_provider = graphene.Field(LlmProviderInput)
    llm_config = graphene.Field(LlmConfigInput)
    prompts = graphene.Field(AgentPromptsInput)
    system_prompt = graphene.String(description="Same as prompts.system.")
    user_template = graphene.String(description="Same as prompts.userTemplate.")
    context_instructions = graphene.String(description="Same as prompts.contextInstructions.")
    capabilities = graphene.List(graphene.NonNull(graphene.String))
    tools = graphene.List(graphene.NonNull(graphene.ID), description="Ids (or names) of functions it may call.")
    circuit_breaker = JSON(description="Routing options: the /v1 circuit_breaker object.")
    json_mode = graphene.Boolean()
    output_schema = JSON(description="A JSON schema the output must follow.")
    max_tool_steps = graphene.Int()
    timeout_seconds = graphene.Float()
    retry_config = graphene.Field(AgentRetryInput)
    enabled = graphene.Boolean()
    llm_provider_snake = graphene.Field(LlmProviderInput, name="llm_provider", description=SNAKE)
    system_prompt_snake = graphene.String(name="system_prompt", description=SNAKE)


class CreateAgent(graphene.Mutation):
    class Arguments:
        input = AgentDefinitionInput(required=True)

    Output = Agent

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        serializer = AgentSerializer(data=agent_body(input))
        serializer.is_valid(raise_exception=True)
        return services.agent_create(info.context.tenant, **serializer.validated_data)


def agent_body(input) -> dict:
    """The input as the REST API's body (which validates it)."""
    prompts = present(**dict(input.prompts or {}))
    prompts.update({key: value for key, value in (("user_template", input.user_template),
                                                  ("context_instructions", input.context_instructions))
                    if value is not None and key not in prompts})
    llm = input.llm_config
    provider = given(input, "llm_provider")
    return present(
        name=input.name, description=input.description, model=input.model,
        llm=present(temperature=llm.temperature, max_tokens=llm.max_tokens, top_p=llm.top_p,
                    frequency_penalty=llm.frequency_penalty, presence_penalty=llm.presence_penalty,
                    stop=llm.stop_sequences) if llm is not None else None,
        prompts=prompts or None, system_prompt=given(input, "system_prompt"), capabilities=input.capabilities,
        tools=input.tools, routing=input.circuit_breaker, json_mode=input.json_mode, output_schema=input.output_schema,
        max_tool_steps=input.max_tool_steps, timeout_seconds=input.timeout_seconds,
        retry=retry_of(input.retry_config), enabled=input.enabled,
        llm_provider=present(provider_type=given(provider, "provider_type"), model=provider.model,
                             api_key=given(provider, "api_key"), base_url=given(provider, "base_url"))
        if provider is not None else None)
