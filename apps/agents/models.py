"""Agents (a tenant's LLM workers), their bindings to workflow places, and every run of one."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.core.models import FINISHED, ExecutionStatus, TimeStampedModel  # noqa: F401 - re-exported

# The original's LLM defaults.
DEFAULT_LLM = {"temperature": 0.7, "max_tokens": 1000}
# The original's retry_config; error kinds an agent may retry (ApiError.retryable ones only).
RETRY_KINDS = ("timeout", "rate_limit", "upstream_unavailable")
DEFAULT_RETRY = {"max_attempts": 3, "backoff_seconds": 10, "retry_on_errors": list(RETRY_KINDS)}


class Agent(TimeStampedModel):
    """An LLM worker: a model the gateway resolves, prompts, settings and the functions it may call."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    model = models.CharField(max_length=200, default="auto",
                             help_text="Any name the gateway resolves: a catalogue id or alias, provider/model, "
                                       "a virtual model (auto, cb:coding, a tenant's own).")
    provider = models.ForeignKey("providers.Provider", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", help_text="Set when the agent was given an inline llm_provider.")
    routing = models.JSONField(default=dict, blank=True, help_text="The /v1 circuit_breaker object.")
    llm = models.JSONField(default=dict, blank=True,
                           help_text="temperature, max_tokens, top_p, frequency_penalty, presence_penalty, stop.")
    system_prompt = models.TextField(blank=True)
    user_template = models.TextField(blank=True, default="{input_data}")
    context_instructions = models.TextField(blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    json_mode = models.BooleanField(default=False)
    output_schema = models.JSONField(null=True, blank=True, help_text="A JSON schema the output must follow.")
    tools = models.JSONField(default=list, blank=True, help_text="Ids of the functions the agent may call.")
    max_tool_steps = models.PositiveSmallIntegerField(default=5)
    timeout_seconds = models.FloatField(default=300.0)
    retry = models.JSONField(default=dict, blank=True, help_text="max_attempts, backoff_seconds, retry_on_errors.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="agent_tenant_name_unique")]

    def __str__(self):
        return self.name

    @property
    def llm_settings(self) -> dict:
        return {**DEFAULT_LLM, **(self.llm or {})}

    @property
    def retry_settings(self) -> dict:
        return {**DEFAULT_RETRY, **(self.retry or {})}


class PlaceAgent(TimeStampedModel):
    """The original's PlaceAgentConfig: run `agent` on tokens entering `place` of `workflow`."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="place_agents")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="places")
    workflow = models.CharField(max_length=64, help_text="The workflow's slug.")
    place = models.CharField(max_length=100)
    trigger_conditions = models.JSONField(null=True, blank=True, help_text="A rules-engine condition over the token.")
    input_mapping = models.JSONField(default=dict, blank=True,
                                     help_text='{template variable: "data.x" | "metadata.y" | "id" | "place"}')
    output_mapping = models.JSONField(default=dict, blank=True,
                                      help_text='{"data.x" | "metadata.y": "output" | "output.field" | "text"}')
    functions = models.JSONField(default=list, blank=True,
                                 help_text='Function steps after the output is written: [{"function": id or name, '
                                           '"input": {"text": "data.article"}, "output": "data.stats"}].')
    auto_transition = models.CharField(max_length=120, blank=True, help_text="Fired after a successful run.")
    schedule = models.JSONField(default=dict, blank=True,
                                help_text="initial_delay_seconds, interval_seconds, max_executions.")
    retry = models.JSONField(default=dict, blank=True, help_text="Overrides the agent's retry settings.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["workflow", "place", "id"]
        indexes = [models.Index(fields=["tenant", "workflow"], name="agents_place_tenant_wf")]

    def __str__(self):
        return f"{self.workflow}.{self.place} → {self.agent_id}"




class AgentExecution(models.Model):
    """One run of an agent: input, the rendered messages, streamed output, tool calls, usage and cost."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="agent_executions")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="executions")
    place_agent = models.ForeignKey(PlaceAgent, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="executions")
    status = models.CharField(max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING)
    # Where it runs: outside workflows these are blank.
    workflow = models.CharField(max_length=64, blank=True)
    instance_id = models.UUIDField(null=True, blank=True)
    token_id = models.UUIDField(null=True, blank=True)
    trigger_key = models.CharField(max_length=120, blank=True, help_text="What started it (token arrival).")
    input = models.JSONField(default=dict, blank=True)
    messages = models.JSONField(default=list, blank=True, help_text="The conversation sent (rendered prompts).")
    output_text = models.TextField(blank=True)
    output_json = models.JSONField(null=True, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    model_requested = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True, help_text="The model that served.")
    provider = models.CharField(max_length=200, blank=True, help_text="The provider that served.")
    request_ids = models.JSONField(default=list, blank=True, help_text="The usage ledger's records of this run.")
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    timeout_seconds = models.FloatField(default=300.0)
    cancel_requested = models.BooleanField(default=False)
    transition = models.JSONField(default=dict, blank=True, help_text="The automatic transition's outcome.")
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    attempt_started_at = models.DateTimeField(null=True, blank=True, help_text="When the current attempt was claimed.")
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="agents_exec_tenant_created"),
                   models.Index(fields=["agent", "status"], name="agents_exec_agent_status"),
                   models.Index(fields=["token_id"], name="agents_exec_token"),
                   models.Index(fields=["attempt_started_at"], name="agents_exec_running",
                                condition=Q(status="running"))]
        constraints = [models.UniqueConstraint(fields=["place_agent", "trigger_key"], name="agents_exec_trigger_once",
                                               condition=~Q(trigger_key=""))]

    def __str__(self):
        return f"{self.agent_id}:{self.id} {self.status}"
