"""Functions (a tenant's callable units of work), what starts them (triggers, chains) and every run of one."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.core import crypto
from apps.core.models import FINISHED, ExecutionStatus, TimeStampedModel  # noqa: F401 - re-exported


class Runtime(models.TextChoices):
    HTTP = "http"
    PYTHON = "python"
    COMMAND = "command"
    CONTAINER = "container"


class Backoff(models.TextChoices):
    FIXED = "fixed"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


# What a failed attempt can be, and so what `retry_on` may name. The first three are the default retry set.
ERROR_CODES = {
    "timeout": "the attempt ran longer than the function's timeout",
    "connection": "the HTTP endpoint or container engine could not be reached",
    "http_5xx": "the HTTP endpoint answered 5xx",
    "http_429": "the HTTP endpoint answered 429",
    "http_4xx": "the HTTP endpoint answered another 4xx",
    "exit_code": "the command or container exited non-zero",
    "resource_limit": "the command was killed by a resource limit (CPU, memory, file size)",
    "bad_output": "the output was not a JSON object",
    "output_invalid": "the output does not match the output schema",
    "exception": "the Python callable raised",
}
DEFAULT_RETRY_ON = ["timeout", "connection", "http_5xx", "http_429"]
# Never retried, whatever `retry_on` says: another attempt would fail the same way.
FINAL_ERROR_CODES = {"input_invalid", "not_allowed", "no_engine", "misconfigured", "cancelled"}


class Function(TimeStampedModel):
    """A tenant's function: a runtime and its configuration, JSON Schemas for input and output, retry
    settings. `version` counts saved changes; every execution records the version it ran."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="functions")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    runtime = models.CharField(max_length=16, choices=Runtime.choices)
    config = models.JSONField(default=dict, blank=True,
                              help_text="Runtime settings: http {url, headers}, python {callable}, command "
                                        "{command, env, limits}, container {image, command, env, mounts, limits}.")
    # The HMAC key of http functions and the secret env of containers (a JSON object), Fernet-encrypted.
    secret_encrypted = models.TextField(blank=True, editable=False)
    input_schema = models.JSONField(default=dict, blank=True)
    output_schema = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.FloatField(default=30.0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    backoff = models.CharField(max_length=12, choices=Backoff.choices, default=Backoff.EXPONENTIAL)
    retry_delay_seconds = models.FloatField(default=1.0, help_text="The first retry's delay.")
    retry_max_delay_seconds = models.FloatField(default=300.0)
    retry_on = models.JSONField(default=list, blank=True, help_text="Error codes worth another attempt.")
    enabled = models.BooleanField(default=True)
    tags = models.JSONField(default=list, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="function_tenant_name_unique")]

    def __str__(self):
        return self.name

    def set_secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value) if value else ""

    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted) if self.secret_encrypted else ""

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)


class TriggerKind(models.TextChoices):
    # (ruff S105 reads "token" as a secret: these are workflow tokens.)
    TOKEN_CREATED = "token_created"  # noqa: S105
    TOKEN_TRANSITIONED = "token_transitioned"  # noqa: S105
    TOKEN_UPDATED = "token_updated"  # noqa: S105
    INSTANCE_COMPLETED = "instance_completed"
    WORKFLOW_SAVED = "workflow_saved"
    FUNCTION_COMPLETED = "function_completed"
    CUSTOM = "custom"
    SCHEDULE = "schedule"


class FunctionTrigger(TimeStampedModel):
    """What starts a function by itself: a workflow event, another function finishing, a named custom event, or
    a cron schedule; when its condition holds over the event's facts, with the input its mapping builds."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="triggers")
    kind = models.CharField(max_length=24, choices=TriggerKind.choices)
    workflow = models.CharField(max_length=64, blank=True, help_text="Only events of this workflow (slug).")
    config = models.JSONField(default=dict, blank=True,
                              help_text="place; from_place, to_place, transition; function_id, success; name; "
                                        "cron, timezone.")
    condition = models.JSONField(null=True, blank=True, help_text="A rules-engine condition over the facts.")
    input_mapping = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="Schedules: the next slot, claimed once.")
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["tenant", "kind"], name="fn_trigger_tenant_kind"),
                   models.Index(fields=["next_run_at"], name="fn_trigger_due",
                                condition=Q(kind="schedule", enabled=True))]

    def __str__(self):
        return f"{self.kind} → {self.function_id}"


class ChainOn(models.TextChoices):
    ALWAYS = "always"
    SUCCESS = "success"
    FAILURE = "failure"
    CONDITION = "condition"


class FunctionChain(TimeStampedModel):
    """After `function` finishes, run `next_function` (always, on success, on failure, or when `condition`
    holds over the finished run's facts), with its own input mapping and an optional delay."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="chains")
    next_function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="+")
    on = models.CharField(max_length=12, choices=ChainOn.choices, default=ChainOn.SUCCESS)
    condition = models.JSONField(null=True, blank=True)
    input_mapping = models.JSONField(default=dict, blank=True)
    delay_seconds = models.FloatField(default=0.0)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.function_id} → {self.next_function_id} ({self.on})"




class FunctionExecution(models.Model):
    """One run of a function, from enqueueing to its end, over all its attempts. A task claims it by moving it
    from pending to running (attempt n claims only attempt n), so a duplicated task never runs it twice."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="executions")
    function_version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING)
    trigger = models.CharField(max_length=40, default="manual", help_text="manual, api, agent, chain, schedule, "
                                                                           "or the event kind.")
    trigger_ref = models.ForeignKey(FunctionTrigger, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="The facts that started it.")
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    logs = models.JSONField(default=list, blank=True, help_text="One entry per attempt.")
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=24, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    timeout_seconds = models.FloatField(default=30.0)
    # Links: plain fields, so an execution outlives the instance, token or agent run it served.
    workflow = models.CharField(max_length=64, blank=True)
    instance_id = models.UUIDField(null=True, blank=True)
    token_id = models.UUIDField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    agent_execution_id = models.CharField(max_length=64, blank=True)
    depth = models.PositiveSmallIntegerField(default=0, help_text="Chain/trigger depth from the first run.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Pending: when its (next) attempt is due. Running: when the attempt's lease ends (a task redelivered after
    # a worker died may take it over then).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "function", "-created_at"], name="fn_exec_tenant_function"),
                   models.Index(fields=["tenant", "status"], name="fn_exec_tenant_status"),
                   models.Index(fields=["instance_id"], name="fn_exec_instance",
                                condition=Q(instance_id__isnull=False))]

    def __str__(self):
        return f"{self.function_id}:{self.id} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == ExecutionStatus.COMPLETED
