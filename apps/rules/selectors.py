"""Tenant-scoped reads of named rules."""

from __future__ import annotations

from django.db.models import QuerySet

from .engine import BUILTIN_RULES
from .models import Rule


def rule_list(*, tenant) -> QuerySet[Rule]:
    """The tenant's own rules, enabled or not."""
    return Rule.objects.filter(tenant=tenant)


def named_rules_for(*, tenant) -> dict:
    """Every name a condition of this tenant may reference → its raw condition: the built-ins, overlaid by the
    tenant's enabled rules (which shadow built-ins of the same name)."""
    named = dict(BUILTIN_RULES)
    named.update(Rule.objects.filter(tenant=tenant, enabled=True).values_list("name", "condition"))
    return named
