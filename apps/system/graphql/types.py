"""GraphQL types of the system surface: health, metrics and completions."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON


class SystemHealth(graphene.ObjectType):
    """What GET /health answers, as GraphQL."""

    status = graphene.String(required=True, description="healthy or unhealthy.")
    version = graphene.String(required=True)
    embedded = graphene.Boolean(required=True)
    checks = JSON(required=True, description="{database, redis: {status, latency_ms}}.")
    providers = JSON(required=True, description="Global providers: healthy, degraded, down or unknown.")


class ProviderStatus(graphene.ObjectType):
    provider = graphene.String(required=True)
    provider_type = graphene.String(required=True)
    status = graphene.String(required=True, description="healthy, degraded (some circuits open), down or unknown.")
    deployments_measured = graphene.Int(required=True)
    circuits_open = graphene.Int(required=True)


class CostMetrics(graphene.ObjectType):
    cost_in_window = graphene.Float(required=True, description="USD of the tenant's requests in the window.")
    cost_today = graphene.Float(required=True)
    cost_this_month = graphene.Float(required=True)
    projected_monthly_spend = graphene.Float(required=True)


class SystemMetrics(graphene.ObjectType):
    """The tenant's traffic over the last `windowSeconds` (from the usage ledger), the server's requests in
    flight (all worker processes) and the global providers' health."""

    window_seconds = graphene.Int(required=True)
    requests = graphene.Int(required=True)
    requests_per_second = graphene.Float(required=True)
    error_rate = graphene.Float(required=True)
    average_latency_ms = graphene.Float()
    active_connections = graphene.Int(required=True, description="Gateway requests in flight on this server.")
    provider_health = graphene.List(graphene.NonNull(ProviderStatus), required=True)
    cost_metrics = graphene.Field(CostMetrics, required=True)


class MessageRole(graphene.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    DEVELOPER = "developer"


class MessageInput(graphene.InputObjectType):
    role = graphene.Field(MessageRole, required=True)
    content = graphene.String(required=True)
    name = graphene.String()


class Usage(graphene.ObjectType):
    prompt_tokens = graphene.Int(required=True)
    completion_tokens = graphene.Int(required=True)
    total_tokens = graphene.Int(required=True)
    cost = graphene.Float(description="USD, at the served model's prices.")


class RoutingAttempt(graphene.ObjectType):
    provider = graphene.String(required=True)
    model = graphene.String(required=True)
    outcome = graphene.String(required=True, description="ok, retryable_error, error or circuit_open.")
    status = graphene.Int()
    latency_ms = graphene.Float(required=True)


class RoutingInfo(graphene.ObjectType):
    request_id = graphene.String(required=True)
    strategy = graphene.String(required=True)
    provider = graphene.String()
    model = graphene.String()
    attempts = graphene.List(graphene.NonNull(RoutingAttempt), required=True)
    overhead_ms = graphene.Float()


class Completion(graphene.ObjectType):
    id = graphene.ID(required=True, description="With stream: true, the id to subscribe to (completionStream).")
    content = graphene.String(description="Null while a streamed completion is produced in the background.")
    model = graphene.String()
    provider = graphene.String()
    finish_reason = graphene.String()
    usage = graphene.Field(Usage)
    routing_info = graphene.Field(RoutingInfo)
    streaming = graphene.Boolean(required=True)
