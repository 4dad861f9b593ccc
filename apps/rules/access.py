"""Reaching one of a tenant's named rules by id: another tenant's and a missing one are the same NotFound."""

from __future__ import annotations

from apps.core.access import tenant_row_access

from .models import Rule


def rule_access_by_id(tenant, id, *, for_write: bool = False) -> Rule:  # noqa: A002 — the house signature
    return tenant_row_access(Rule.objects.all(), id, tenant=tenant, for_write=for_write, shared_globals=False,
                             label="rule")
