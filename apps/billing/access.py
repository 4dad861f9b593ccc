"""Reaching one budget or cost rule by id for a tenant (`apps.core.access.tenant_row_access`): another
tenant's row and a missing one are the same NotFound; global cost rules are readable, changeable by staff."""

from __future__ import annotations

from apps.core.access import tenant_row_access
from apps.core.errors import NotFound

from .models import Budget, CostRule, RequestLog


def budget_access_by_id(tenant, budget_id, *, for_write: bool = False) -> Budget:
    """Budgets always belong to a tenant: no global rows."""
    try:
        return tenant_row_access(Budget.objects.select_related("api_key"), budget_id, tenant=tenant,
                                 for_write=for_write, shared_globals=False, label="budget")
    except NotFound:
        raise NotFound("No such budget.") from None  # the same body whatever id was probed


def cost_rule_access_by_id(tenant, rule_id, *, for_write: bool = False, staff: bool = False) -> CostRule:
    """The tenant's own rules and the global ones (read-only unless `staff`)."""
    try:
        return tenant_row_access(CostRule.objects.select_related("tenant"), rule_id, tenant=tenant,
                                 for_write=for_write, staff=staff, label="cost rule")
    except NotFound:
        raise NotFound("No such cost rule.") from None  # the same body whatever id was probed


def request_log_access_by_id(tenant, request_id) -> RequestLog:
    """A request log by its request id; logs always belong to a tenant and are never written through the API."""
    try:
        return tenant_row_access(RequestLog.objects.select_related("usage"), request_id, tenant=tenant,
                                 shared_globals=False, label="request log")
    except NotFound:
        raise NotFound("No such request log.") from None  # the same body whatever id was probed
