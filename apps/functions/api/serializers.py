"""Request bodies (strict: unknown and read-only fields are a 400 naming them) and response shapes."""

from __future__ import annotations

from rest_framework import serializers

from apps.core.api import StrictModelSerializer, StrictSerializer
from apps.functions.models import ExecutionStatus, Function, FunctionChain, FunctionExecution, FunctionTrigger


class FunctionSerializer(StrictModelSerializer):
    hmac_secret = serializers.CharField(write_only=True, required=False, min_length=16, max_length=500,
                                        help_text="http: the key requests are signed with (generated and shown "
                                                  "once when not given). Never returned.")
    secret_env = serializers.DictField(child=serializers.CharField(allow_blank=True), write_only=True,
                                       required=False, help_text="container: secret environment variables, "
                                                                 "stored encrypted. Never returned.")
    has_secret = serializers.BooleanField(read_only=True)

    class Meta:
        model = Function
        fields = ["id", "name", "description", "runtime", "config", "input_schema", "output_schema",
                  "timeout_seconds", "max_attempts", "backoff", "retry_delay_seconds", "retry_max_delay_seconds",
                  "retry_on", "enabled", "tags", "version", "has_secret", "hmac_secret", "secret_env",
                  "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "version", "has_secret", "created_by", "created_at", "updated_at"]
        extra_kwargs = {"retry_on": {"help_text": "Error codes worth another attempt (default: timeout, "
                                                  "connection, http_5xx, http_429)."}}


class TriggerSerializer(StrictModelSerializer):
    function = serializers.UUIDField(source="function_id", help_text="The function it starts.")

    class Meta:
        model = FunctionTrigger
        fields = ["id", "function", "kind", "workflow", "config", "condition", "input_mapping", "enabled",
                  "next_run_at", "last_run_at", "created_at", "updated_at"]
        read_only_fields = ["id", "next_run_at", "last_run_at", "created_at", "updated_at"]


class ChainSerializer(StrictModelSerializer):
    function = serializers.UUIDField(source="function_id", help_text="Runs after this function finishes…")
    next_function = serializers.UUIDField(source="next_function_id", help_text="…this one.")

    class Meta:
        model = FunctionChain
        fields = ["id", "function", "next_function", "on", "condition", "input_mapping", "delay_seconds", "enabled",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ExecutionSerializer(StrictModelSerializer):
    function_name = serializers.CharField(source="function.name", read_only=True)

    class Meta:
        model = FunctionExecution
        fields = ["id", "function", "function_name", "function_version", "status", "trigger", "trigger_ref",
                  "input", "output", "error", "error_code", "stdout", "stderr", "logs", "attempts", "max_attempts",
                  "timeout_seconds", "workflow", "instance_id", "token_id", "parent", "agent_execution_id",
                  "depth", "context", "created_at", "started_at", "next_attempt_at", "finished_at", "duration_ms"]
        read_only_fields = fields


class ExecuteSerializer(StrictSerializer):
    input = serializers.DictField(required=False, default=dict, help_text="The function's input (an object).")
    wait = serializers.BooleanField(required=False, default=False,
                                    help_text="Answer once the run finished (waiting at most "
                                              "FUNCTIONS_EXECUTE_WAIT_SECONDS), else at once with it pending.")


class EventSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120, help_text="Starts the `custom` triggers of this name.")
    data = serializers.DictField(required=False, default=dict)


class EventResultSerializer(StrictSerializer):
    name = serializers.CharField()
    executions = serializers.ListField(child=serializers.UUIDField())


EXECUTION_STATUSES = ExecutionStatus.values
