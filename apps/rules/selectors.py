"""Tenant-scoped reads of named rules."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from .engine import BUILTIN_RULES, RuleError, compile_condition, evaluate
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


def rule_evaluate(*, tenant, condition=None, rule: str | None = None, data: dict | None = None,
                  metadata: dict | None = None, facts: dict | None = None) -> dict:
    """Dry run: compile `condition` (or the named `rule`) with the tenant's named rules and evaluate it against
    `data`, `metadata` and other `facts`. Nothing is stored. Raises ValidationError on `rule` / `condition`."""
    named = named_rules_for(tenant=tenant)
    if rule is not None:
        if rule not in named:
            raise ValidationError({"rule": [f"No named rule {rule!r}."]})
        raw, where = rule, "rule"
    else:
        raw, where = condition, "condition"
    try:
        compiled = compile_condition(raw, named=named)
    except RuleError as exc:
        raise ValidationError({where: exc.problems}) from None
    result = evaluate(compiled, {**(facts or {}), "data": data or {}, "metadata": metadata or {}})
    return {"passed": result.passed, "condition": compiled.canonical, "explanation": result.explanation}
