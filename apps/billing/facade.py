"""What other layers may read of billing, as plain frozen data built by explicit mappers.

The gateway's snapshot holds these; nothing outside billing reads billing's models. (Pure modules other layers
may import besides: `money`, `periods`, `budget_spec`, `budget_outcomes`, the budget stores and
`budget_bridge`, `cost_rules` (evaluation and spend counters), `ledger` (the writer).)
"""

from __future__ import annotations

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
    """The rules each tenant runs, in order: key None holds the global rules alone (for tenants with none of
    their own); a tenant with rules gets the global ones and its own merged by priority."""
    enabled = cost_rules_enabled()
    shared = [rule for rule in enabled if rule.tenant_id is None]
    out: dict[int | None, list[RuleSpec]] = {None: active_rule_specs(shared)}
    for tenant_id in {rule.tenant_id for rule in enabled if rule.tenant_id is not None}:
        out[tenant_id] = active_rule_specs(sorted(shared + [r for r in enabled if r.tenant_id == tenant_id],
                                                  key=lambda r: (r.priority, r.id)))
    return out
