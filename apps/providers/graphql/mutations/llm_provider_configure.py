"""`configureLlmProvider`: create or update one of the tenant's own providers, its API key and its models.

The provider is found by `id`, else by its slug (given, or made from the name) among the tenant's own; the key
is write-only (encrypted at rest; the answer only says whether one is set). Models are upserted by id on this
provider; models not named are left alone.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import graphene
from django.core.exceptions import ValidationError
from django.utils.text import slugify

from apps.core.graphql_fields import mutation

from ... import services
from ...access import provider_access_by_id
from ...models import ModelEntry, Provider, ProviderType
from ..types import LLMProvider, remember_providers

# The documents' capability words → the catalogue's flags ("text_generation" is what a chat model does).
CAPABILITIES = {"text_generation": None, "chat": None, "completion": None, "streaming": "supports_streaming",
                "vision": "supports_vision", "multimodal": "supports_vision", "function_calling": "supports_tools",
                "tools": "supports_tools", "tool_use": "supports_tools", "json_mode": "supports_json_mode",
                "embeddings": "supports_embeddings"}


class ModelConfigInput(graphene.InputObjectType):
    id = graphene.ID(required=True, description="The model id clients send.")
    name = graphene.String(description="Display name (the catalogue keeps the id).")
    max_tokens = graphene.Int()
    context_window = graphene.Int()
    cost_per_input_token = graphene.Float(description="USD per input token.")
    cost_per_output_token = graphene.Float(description="USD per output token.")
    supports_streaming = graphene.Boolean()
    supports_function_calling = graphene.Boolean()
    capabilities = graphene.List(graphene.NonNull(graphene.String),
                                 description=f"Any of: {', '.join(sorted(CAPABILITIES))}.")


class LlmProviderConfigInput(graphene.InputObjectType):
    id = graphene.ID(description="The provider to update; default: the tenant's provider with this slug.")
    provider_type = graphene.String(required=True, description=", ".join(ProviderType.values))
    name = graphene.String(required=True)
    slug = graphene.String(description="Default: made from the name.")
    base_url = graphene.String()
    api_key = graphene.String(description="Write-only: stored encrypted, never returned.")
    enabled = graphene.Boolean()
    priority = graphene.Int()
    models = graphene.List(graphene.NonNull(ModelConfigInput))


class ConfigureLlmProvider(graphene.Mutation):
    class Arguments:
        input = LlmProviderConfigInput(required=True)

    Output = LLMProvider

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        provider_type = str(input.provider_type).strip().lower().replace("-", "_")
        if provider_type not in ProviderType.values:
            raise ValidationError({"providerType": [f"One of {', '.join(ProviderType.values)}."]})
        fields = {"name": input.name, "type": provider_type, "base_url": input.base_url or ""}
        fields.update({k: v for k, v in (("enabled", input.enabled), ("priority", input.priority)) if v is not None})
        provider = _existing(tenant, input)
        if provider is None:
            slug = input.slug or slugify(input.name)[:64] or provider_type
            provider = services.provider_create(tenant=tenant, slug=slug, **fields)
        else:
            provider = services.provider_update(tenant=tenant, provider=provider, **fields)
        if input.api_key is not None:
            credential = provider.credentials.order_by("id").first()
            if credential is None:
                services.credential_create(tenant=tenant, provider=provider, api_key=input.api_key, name="graphql")
            else:
                services.credential_update(tenant=tenant, credential=credential, api_key=input.api_key)
        for model in input.models or []:
            _model_save(provider, model)
        return remember_providers(info, [provider])[0]


def _existing(tenant, input) -> Provider | None:
    if input.id is not None:
        provider = provider_access_by_id(tenant, input.id, for_write=True)
        if provider.tenant_id is None:
            raise ValidationError({"id": ["Global providers are the operator's; configure one of your own."]})
        return provider
    slug = input.slug or slugify(input.name)[:64]
    return Provider.objects.select_for_update().filter(tenant=tenant, slug=slug).first()


def _model_save(provider: Provider, model) -> ModelEntry:
    entry = ModelEntry.objects.filter(provider=provider, model_id=model.id).first() or ModelEntry(
        provider=provider, provider_type=provider.type, model_id=model.id)
    entry.provider_type = provider.type
    if model.max_tokens is not None:
        entry.max_output_tokens = model.max_tokens
    if model.context_window is not None:
        entry.context_window = model.context_window
    for field, value in (("input_price", model.cost_per_input_token), ("output_price", model.cost_per_output_token)):
        if value is not None:
            setattr(entry, field, _price(value, model.id))
    if model.supports_streaming is not None:
        entry.supports_streaming = model.supports_streaming
    if model.supports_function_calling is not None:
        entry.supports_tools = model.supports_function_calling
    for capability in model.capabilities or []:
        flag = CAPABILITIES.get(capability.strip().lower(), "?")
        if flag == "?":
            raise ValidationError({"models.capabilities": [
                f"Unknown capability {capability!r}; one of {', '.join(sorted(CAPABILITIES))}."]})
        if flag:
            setattr(entry, flag, True)
    return services.model_entry_save(entry=entry)


def _price(value: float, model_id: str) -> Decimal:
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        price = Decimal(-1)
    if not price.is_finite() or price < 0:
        raise ValidationError({"models.costPerInputToken": [f"Prices of {model_id!r} must be 0 or more."]})
    return price
