"""Provider and catalogue queries: `llmProviders`, `llmProvider(id)`, `models`."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import page_arguments, paged, reader

from ..access import provider_access_by_id
from ..selectors import model_list, provider_list
from .types import LLMProvider, Model, remember_providers


class ProvidersQueries(graphene.ObjectType):
    llm_providers = graphene.List(graphene.NonNull(LLMProvider), required=True,
                                  description="The global providers and the tenant's own, with their models and "
                                              "live health.", **page_arguments())
    llm_provider = graphene.Field(LLMProvider, id=graphene.ID(required=True))
    models = graphene.List(graphene.NonNull(Model), required=True, provider_type=graphene.String(),
                           description="The catalogue the tenant can route to.", **page_arguments())

    @staticmethod
    @reader
    def resolve_llm_providers(root, info, first=None, offset=None):
        return remember_providers(info, paged(provider_list(tenant=info.context.tenant), first, offset))

    @staticmethod
    @reader
    def resolve_llm_provider(root, info, id):  # noqa: A002 - the GraphQL argument's name
        return remember_providers(info, [provider_access_by_id(info.context.tenant, id)])[0]

    @staticmethod
    @reader
    def resolve_models(root, info, provider_type=None, first=None, offset=None):
        rows = model_list(tenant=info.context.tenant).order_by("provider_type", "model_id", "id")
        if provider_type:
            rows = rows.filter(provider_type=provider_type)
        return paged(rows, first, offset)
