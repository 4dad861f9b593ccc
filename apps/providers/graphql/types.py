"""GraphQL types of providers and the model catalogue (the documents' `LLMProvider`, `Model`)."""

from __future__ import annotations

import graphene
from django.db.models import Q

from apps.core.graphql_fields import batched, remember

from .. import health_source
from ..models import ModelEntry, ProviderCredential
from ..selectors import model_list


class HealthStatus(graphene.ObjectType):
    """The provider's deployments from the live circuit state (shared by every gateway process)."""

    is_healthy = graphene.Boolean(required=True, description="No circuit open and a deployment can take requests.")
    circuit_state = graphene.String(required=True, description="closed, half_open or open (the worst).")
    last_check = graphene.DateTime(required=True, description="When this state was read from the health store.")
    error_rate = graphene.Float(required=True, description="Errors ÷ requests over the breaker's rolling window.")
    requests = graphene.Int(required=True, description="Outcomes in the rolling window.")
    average_latency_ms = graphene.Float(description="Moving average of request latency; null: never measured.")
    consecutive_failures = graphene.Int(required=True)
    deployments_measured = graphene.Int(required=True)
    last_error = graphene.String(description="The last failed request of this tenant through the provider "
                                             "(error type and HTTP status), from the usage ledger.")
    last_error_at = graphene.DateTime()


class Model(graphene.ObjectType):
    id = graphene.ID(required=True, source="model_id", description="The model id clients send (e.g. gpt-4o).")
    name = graphene.String(required=True, source="model_id", description="The catalogue keeps no display name.")
    provider_type = graphene.String(required=True)
    provider_id = graphene.ID(description="Set when only this provider serves it; null: any of its type.")
    max_tokens = graphene.Int(required=True, source="max_output_tokens", description="Most output tokens.")
    context_window = graphene.Int(required=True)
    cost_per_input_token = graphene.Float(required=True, source="input_price", description="USD.")
    cost_per_output_token = graphene.Float(required=True, source="output_price", description="USD.")
    supports_streaming = graphene.Boolean(required=True)
    supports_function_calling = graphene.Boolean(required=True, source="supports_tools")
    capabilities = graphene.List(graphene.NonNull(graphene.String), required=True)
    mode = graphene.String(required=True)
    enabled = graphene.Boolean(required=True)


class LLMProvider(graphene.ObjectType):
    id = graphene.ID(required=True)
    slug = graphene.String(required=True)
    provider_type = graphene.String(required=True, source="type")
    name = graphene.String(required=True)
    base_url = graphene.String(required=True, source="effective_base_url",
                               description="The type's public endpoint unless the provider names its own.")
    enabled = graphene.Boolean(required=True)
    priority = graphene.Int(required=True)
    is_global = graphene.Boolean(required=True, description="Shared by every tenant (the operator's).")
    has_api_key = graphene.Boolean(required=True, description="Keys are write-only: only whether one is set.")
    models = graphene.List(graphene.NonNull(Model), required=True)
    health_status = graphene.Field(HealthStatus, required=True)

    @staticmethod
    def resolve_has_api_key(provider, info):
        return batched(info, "provider", "has_key", provider, _keys_by_provider)

    @staticmethod
    def resolve_models(provider, info):
        return batched(info, "provider", "models", provider, lambda rows: _models_by_provider(info, rows))

    @staticmethod
    def resolve_health_status(provider, info):
        return batched(info, "provider", "health", provider, lambda rows: _health_by_provider(info, rows))


def remember_providers(info, providers) -> list:
    """Called by the fields that list providers: their fields load for all of them at once."""
    return remember(info, "provider", providers)


def _keys_by_provider(providers) -> dict[int, bool]:
    ids = [p.pk for p in providers]
    with_keys = set(ProviderCredential.objects.filter(provider_id__in=ids, enabled=True)
                    .values_list("provider_id", flat=True).distinct())
    return {pk: pk in with_keys for pk in ids}


def _models_by_provider(info, providers) -> dict[int, list[ModelEntry]]:
    ids = [p.pk for p in providers]
    types = {p.type for p in providers}
    rows = model_list(tenant=info.context.tenant).filter(
        Q(provider_id__in=ids) | Q(provider__isnull=True, provider_type__in=types)).order_by("model_id")
    by_provider: dict[int, list] = {}
    by_type: dict[str, list] = {}
    for entry in rows:
        if entry.provider_id is not None:
            by_provider.setdefault(entry.provider_id, []).append(entry)
        else:
            by_type.setdefault(entry.provider_type, []).append(entry)
    out = {}
    for provider in providers:
        own = by_provider.get(provider.pk, [])
        taken = {entry.model_id for entry in own}
        out[provider.pk] = own + [e for e in by_type.get(provider.type, []) if e.model_id not in taken]
    return out


def _health_by_provider(info, providers) -> dict[int, HealthStatus]:
    live = health_source.provider_health([p.pk for p in providers], tenant_id=info.context.tenant.pk)
    return {pid: HealthStatus(is_healthy=h.is_healthy, circuit_state=h.circuit, last_check=h.read_at,
                              error_rate=h.error_rate, requests=h.requests, average_latency_ms=h.average_latency_ms,
                              consecutive_failures=h.consecutive_failures,
                              deployments_measured=h.deployments_measured, last_error=h.last_error,
                              last_error_at=h.last_error_at)
            for pid, h in live.items()}
