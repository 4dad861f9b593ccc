"""Tenant-scoped reads of providers, credentials and the catalogue."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import ModelEntry, ModelRoute, Provider, ProviderCredential, VirtualModel


def provider_list(*, tenant) -> QuerySet[Provider]:
    """Global providers plus the tenant's own."""
    return Provider.objects.filter(Q(tenant__isnull=True) | Q(tenant=tenant)).select_related("tenant")


def credential_list(*, tenant) -> QuerySet[ProviderCredential]:
    """Credentials of the tenant's own providers; global ones are the operator's business."""
    return ProviderCredential.objects.filter(provider__tenant=tenant).select_related("provider")


def model_list(*, tenant=None) -> QuerySet[ModelEntry]:
    """The shared catalogue plus entries tied to providers the tenant can see."""
    entries = ModelEntry.objects.select_related("provider")
    if tenant is None:
        return entries.filter(provider__tenant__isnull=True)
    return entries.filter(Q(provider__isnull=True) | Q(provider__tenant__isnull=True) | Q(provider__tenant=tenant))


def virtual_model_list(*, tenant) -> QuerySet[VirtualModel]:
    return VirtualModel.objects.filter(Q(tenant__isnull=True) | Q(tenant=tenant))


def model_route_list(*, tenant) -> QuerySet[ModelRoute]:
    return ModelRoute.objects.filter(Q(tenant__isnull=True) | Q(tenant=tenant))
