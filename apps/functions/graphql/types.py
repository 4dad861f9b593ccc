"""GraphQL types of functions and their runs. Secrets (an http function's HMAC key, a container's environment)
are write-only: `hmacSecret` carries a generated key once, in the createFunction answer, and is null elsewhere."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON


class Function(graphene.ObjectType):
    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    runtime = graphene.String(required=True, description="python, http, command, container, …")
    config = JSON(required=True)
    input_schema = JSON(required=True)
    output_schema = JSON(required=True)
    timeout_seconds = graphene.Float(required=True)
    max_attempts = graphene.Int(required=True)
    backoff = graphene.String(required=True)
    retry_delay_seconds = graphene.Float(required=True)
    retry_max_delay_seconds = graphene.Float(required=True)
    retry_on = graphene.List(graphene.NonNull(graphene.String), required=True)
    enabled = graphene.Boolean(required=True)
    tags = graphene.List(graphene.NonNull(graphene.String), required=True)
    version = graphene.Int(required=True)
    has_secret = graphene.Boolean(required=True)
    hmac_secret = graphene.String(description="The HMAC key generated for a new http function: shown once.")
    created_by = graphene.String(required=True)
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_hmac_secret(function, info):
        return getattr(function, "shown_secret", None)


class FunctionExecution(graphene.ObjectType):
    id = graphene.ID(required=True)
    function_id = graphene.ID(required=True)
    function = graphene.Field(Function, required=True)
    function_name = graphene.String(required=True)
    function_version = graphene.Int(required=True)
    status = graphene.String(required=True)
    finished = graphene.Boolean(required=True)
    trigger = graphene.String(required=True)
    input = JSON(required=True)
    output = JSON()
    error = graphene.String()
    error_code = graphene.String()
    stdout = graphene.String(required=True)
    stderr = graphene.String(required=True)
    logs = JSON(required=True, description="One entry per attempt.")
    attempts = graphene.Int(required=True)
    max_attempts = graphene.Int(required=True)
    timeout_seconds = graphene.Float(required=True)
    workflow_id = graphene.String(source="workflow")
    instance_id = graphene.ID()
    token_id = graphene.ID()
    parent_id = graphene.ID()
    agent_execution_id = graphene.ID()
    depth = graphene.Int(required=True)
    created_at = graphene.DateTime(required=True)
    started_at = graphene.DateTime()
    finished_at = graphene.DateTime()
    duration_ms = graphene.Int()

    @staticmethod
    def resolve_function_name(execution, info):
        return execution.function.name

    @staticmethod
    def resolve_error(execution, info):
        return execution.error or None

    @staticmethod
    def resolve_error_code(execution, info):
        return execution.error_code or None

    @staticmethod
    def resolve_agent_execution_id(execution, info):
        return execution.agent_execution_id or None
