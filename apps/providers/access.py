"""Reaching one provider-app row by id for a tenant: `<thing>_access_by_id(tenant, id, *, for_write=False)`.

All apply `apps.core.access.tenant_row_access`: another tenant's row and a missing one raise the same NotFound;
global rows (no tenant) are readable, and changing them is staff's (PermissionDenied otherwise).
"""

from __future__ import annotations

from apps.core.access import tenant_row_access

from .models import ModelRoute, Provider, ProviderCredential, VirtualModel


def provider_access_by_id(tenant, provider_id, *, for_write: bool = False, staff: bool = False) -> Provider:
    return tenant_row_access(Provider.objects.select_related("tenant"), provider_id, tenant=tenant,
                             for_write=for_write, staff=staff, label="provider")


def credential_access_by_id(tenant, credential_id, *, for_write: bool = False) -> ProviderCredential:
    """Only the tenant's own providers' keys: global providers' keys are the operator's, not even listed."""
    return tenant_row_access(ProviderCredential.objects.select_related("provider"), credential_id, tenant=tenant,
                             for_write=for_write, shared_globals=False, label="credential",
                             tenant_field="provider__tenant")


def virtual_model_access_by_id(tenant, virtual_model_id, *, for_write: bool = False,
                               staff: bool = False) -> VirtualModel:
    return tenant_row_access(VirtualModel.objects.select_related("tenant"), virtual_model_id, tenant=tenant,
                             for_write=for_write, staff=staff, label="virtual model")


def model_route_access_by_id(tenant, model_route_id, *, for_write: bool = False, staff: bool = False) -> ModelRoute:
    return tenant_row_access(ModelRoute.objects.select_related("tenant"), model_route_id, tenant=tenant,
                             for_write=for_write, staff=staff, label="model route")
