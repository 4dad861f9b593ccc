"""Reaching one tenants-app row by id for a tenant: `<thing>_access_by_id(tenant, id, *, for_write=False)`,
on `apps.core.access.tenant_row_access` (another tenant's row and a missing one raise the same NotFound)."""

from __future__ import annotations

from apps.core.access import tenant_row_access

from .models import ApiKey, Tenant


def api_key_access_by_id(tenant: Tenant, api_key_id, *, for_write: bool = False) -> ApiKey:
    return tenant_row_access(ApiKey.objects.all(), api_key_id, tenant=tenant, for_write=for_write,
                             shared_globals=False, label="API key")


def tenant_access_by_id(tenant: Tenant, tenant_id, *, for_write: bool = False) -> Tenant:
    """A tenant reaches only itself; any other id, existing or not, is the same NotFound."""
    return tenant_row_access(Tenant.objects.all(), tenant_id, tenant=tenant.pk, for_write=for_write,
                             shared_globals=False, label="tenant", tenant_field="pk")
