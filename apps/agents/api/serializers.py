"""Request and response shapes of the agents API. Strict (unknown fields are a 400 naming them); the original's
names are accepted as aliases (`llm_config`, `retry_config`, `system_prompt`, `workflow_id`, `conditions`)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from apps.agents.models import Agent, AgentExecution, ExecutionStatus, PlaceAgent
from apps.core.api import AliasedStrictSerializer as StrictSerializer
from apps.core.api import StrictModelSerializer

PROMPT_KEYS = ("system", "user_template", "context_instructions")


class AgentSerializer(StrictSerializer):
    aliases = {"llm_config": "llm", "retry_config": "retry", "circuit_breaker": "routing"}
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True)
    model = serializers.CharField(required=False, max_length=200,
                                  help_text="Any name the gateway resolves (default auto).")
    routing = serializers.JSONField(required=False, help_text="The /v1 circuit_breaker object.")
    llm = serializers.JSONField(required=False, help_text="temperature (0.7), max_tokens (1000), top_p, "
                                                          "frequency_penalty, presence_penalty, stop.")
    prompts = serializers.JSONField(required=False, help_text="{system, user_template, context_instructions}")
    system_prompt = serializers.CharField(required=False, allow_blank=True, write_only=True,
                                          help_text="The original's name for prompts.system.")
    capabilities = serializers.JSONField(required=False)
    json_mode = serializers.BooleanField(required=False)
    output_schema = serializers.JSONField(required=False, allow_null=True)
    tools = serializers.JSONField(required=False, help_text="Ids of the functions the agent may call.")
    max_tool_steps = serializers.IntegerField(required=False, min_value=0, max_value=50)
    timeout_seconds = serializers.FloatField(required=False)
    retry = serializers.JSONField(required=False, help_text="max_attempts (3), backoff_seconds (10), "
                                                            "retry_on_errors.")
    enabled = serializers.BooleanField(required=False)
    llm_provider = serializers.JSONField(required=False, write_only=True,
                                         help_text="{provider_type, model, api_key, base_url}: becomes the "
                                                   "tenant's provider; the key is stored encrypted there.")
    provider = serializers.IntegerField(source="provider_id", read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def validate(self, attrs):
        prompts = attrs.pop("prompts", None)
        if prompts is not None:
            if not isinstance(prompts, dict) or any(k not in PROMPT_KEYS for k in prompts) \
                    or not all(isinstance(v, str) for v in prompts.values()):
                raise serializers.ValidationError({"prompts": [f"An object of strings: {', '.join(PROMPT_KEYS)}."]})
            if "system" in prompts:
                attrs["system_prompt"] = prompts["system"]
            for key in ("user_template", "context_instructions"):
                if key in prompts:
                    attrs[key] = prompts[key]
        return attrs

    def to_representation(self, agent: Agent):
        body = super().to_representation(agent)
        body["llm"] = agent.llm_settings
        body["retry"] = agent.retry_settings
        body["prompts"] = {"system": agent.system_prompt, "user_template": agent.user_template,
                           "context_instructions": agent.context_instructions}
        return body


class PlaceAgentSerializer(StrictSerializer):
    aliases = {"workflow_id": "workflow", "agent_id": "agent", "conditions": "trigger_conditions",
               "retry_config": "retry"}
    id = serializers.IntegerField(read_only=True)
    agent = serializers.IntegerField(source="agent_id", help_text="The agent's id (alias agent_id).")
    agent_name = serializers.CharField(source="agent.name", read_only=True)
    workflow = serializers.CharField(max_length=64, help_text="The workflow's id (slug; alias workflow_id).")
    place = serializers.CharField(max_length=100)
    trigger_conditions = serializers.JSONField(required=False, allow_null=True)
    input_mapping = serializers.JSONField(required=False)
    output_mapping = serializers.JSONField(required=False)
    functions = serializers.JSONField(required=False, help_text="Function steps after the output is written.")
    auto_transition = serializers.CharField(required=False, allow_blank=True, max_length=120)
    schedule = serializers.JSONField(required=False)
    retry = serializers.JSONField(required=False)
    enabled = serializers.BooleanField(required=False)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class AgentExecutionSerializer(StrictModelSerializer):
    agent_name = serializers.CharField(source="agent.name", read_only=True)
    cost = serializers.DecimalField(max_digits=20, decimal_places=10, read_only=True)

    class Meta:
        model = AgentExecution
        fields = ["id", "agent", "agent_name", "place_agent", "status", "workflow", "instance_id", "token_id",
                  "input", "messages", "output_text", "output_json", "tool_calls", "prompt_tokens",
                  "completion_tokens", "total_tokens", "cost", "model_requested", "model", "provider",
                  "request_ids", "attempts", "max_attempts", "timeout_seconds", "transition", "error", "error_code",
                  "cancel_requested", "created_at", "started_at", "finished_at", "duration_ms"]
        read_only_fields = fields


class AgentExecuteSerializer(StrictSerializer):
    input = serializers.JSONField(required=False, help_text="Template variables (an object).")
    wait = serializers.JSONField(required=False, help_text="true (up to 30 s) or seconds to wait (≤ 60) for the "
                                                           "result; default false.")

    def validate_wait(self, value):
        """Seconds to wait, at most the operator's AGENTS_EXECUTE_WAIT_SECONDS."""
        if value is None or value is False:
            return 0.0
        if value is True:
            return min(30.0, settings.AGENTS_EXECUTE_WAIT_SECONDS)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 60:
            return min(float(value), settings.AGENTS_EXECUTE_WAIT_SECONDS)
        raise serializers.ValidationError("true, false or a number of seconds from 0 to 60.")


STATUSES = [s.value for s in ExecutionStatus]
__all__ = ["STATUSES", "AgentSerializer", "AgentExecuteSerializer", "AgentExecutionSerializer", "PlaceAgent",
           "PlaceAgentSerializer"]
