"""What other layers may read of billing, as plain frozen data built by explicit mappers.

The gateway's snapshot holds these; nothing outside billing reads billing's models. (Pure modules other layers
may import besides: `money`, `periods`, `budget_spec`, `budget_outcomes`, the budget stores and
`budget_bridge`, `cost_rules` (evaluation and spend counters), `ledger` (the writer).)
"""

from __future__ import annotations

from apps.rules.selectors import named_rules_for

from .budget_spec import BudgetSpec, spec_from_budget
from .cost_rules import RuleSpec, active_rule_specs
from .models import Budget
from .selectors import cost_rules_enabled

__all__ = ["BudgetSpec", "RuleSpec", "budget_specs_by_tenant", "cost_rule_specs_by_tenant"]


def budget_specs_by_tenant() -> dict[int, tuple[BudgetSpec, ...]]:
    """Every enabled budget, by tenant."""
    out: dict[int, list[BudgetSpec]] = {}
    for budget in Budget.objects.filter(enabled=True).order_by("tenant_id", "id"):
        out.setdefault(budget.tenant_id, []).append(spec_from_budget(budget))
    return {tenant_id: tuple(specs) for tenant_id, specs in out.items()}


def cost_rule_specs_by_tenant() -> dict[int | None, list[RuleSpec]]:
    """The rules each tenant runs, in order, their conditions compiled: key None holds the global rules alone
    (for tenants with none of their own); a tenant with rules gets the global ones and its own merged by
    priority. Global rules may name the engine's built-in rules; a tenant's also its own named rules (a
    tenant's rule-engine change bumps the configuration version, so this is rebuilt)."""
    enabled = cost_rules_enabled()
    shared = active_rule_specs([rule for rule in enabled if rule.tenant_id is None])
    out: dict[int | None, list[RuleSpec]] = {None: shared}
    for tenant_id in {rule.tenant_id for rule in enabled if rule.tenant_id is not None}:
        own = active_rule_specs([rule for rule in enabled if rule.tenant_id == tenant_id],
                                lambda owner: named_rules_for(tenant=owner))
        out[tenant_id] = sorted(shared + own, key=lambda spec: (spec.priority, spec.id))
    return out
