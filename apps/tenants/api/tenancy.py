"""Which tenant a management API request acts for."""

from __future__ import annotations

from rest_framework import exceptions

from apps.tenants.models import ApiKey, Tenant
from apps.tenants.selectors import tenants_for_user

TENANT_HEADER = "X-CB-Tenant"


def request_tenant(request) -> Tenant:
    """An API key acts for its tenant; a session user for the tenant named in X-CB-Tenant, or their only one."""
    cached = getattr(request, "_cb_tenant", None)
    if cached is not None:
        return cached
    if isinstance(request.auth, ApiKey):
        tenant = request.auth.tenant
    else:
        tenants = tenants_for_user(user=request.user)
        slug = request.headers.get(TENANT_HEADER) or request.query_params.get("tenant")
        if slug:
            tenant = tenants.filter(slug=slug).first()
            if tenant is None:
                raise exceptions.NotFound(f"No tenant {slug!r} for this user.")
        else:
            candidates = list(tenants[:2])
            if len(candidates) != 1:
                raise exceptions.ValidationError(
                    {TENANT_HEADER: "Name the tenant to act for with the X-CB-Tenant header or ?tenant=slug."}
                )
            tenant = candidates[0]
    request._cb_tenant = tenant
    return tenant
