"""What the hot path knows of a budget: `BudgetSpec` (plain data, kept in the gateway's snapshot), which
budgets a request counts against, and the budget actions' vocabulary."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

BLOCK, DOWNGRADE, NOTIFY = "block", "downgrade", "notify"
ACTIONS = (BLOCK, DOWNGRADE, NOTIFY)
TENANT_SCOPE = "tenant"


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """A budget as plain data (built from the model by `apps.billing.facade`, kept in the snapshot)."""

    id: int
    limit: Decimal
    period: str
    action: str
    downgrade_threshold: Decimal = Decimal(95)
    model: str = ""
    scope: str = TENANT_SCOPE
    tenant_id: int | None = None
    api_key_id: int | None = None
    user_label: str = ""
    project_label: str = ""
    alert_thresholds: tuple = (50, 80, 95)

    @property
    def counter_id(self) -> str:
        """The budget id plus a fingerprint of what it counts: changing the scope, model or period starts a new
        counter (rebuilt from the ledger) instead of carrying the old one's figures over."""
        what = f"{self.period}|{self.api_key_id or ''}|{self.user_label}|{self.project_label}|{self.model}"
        return f"{self.id}.{hashlib.sha256(what.encode()).hexdigest()[:10]}"

    def describe(self) -> str:
        return f"budget {self.id} ({scope_text(self)}, {self.period})"


def scope_text(budget) -> str:
    """What a budget counts, in words — shared by the model (admin, API) and the spec (error messages)."""
    parts = []
    if budget.api_key_id:
        parts.append(f"API key {budget.api_key_id}")
    if budget.user_label:
        parts.append(f"user {budget.user_label!r}")
    if budget.project_label:
        parts.append(f"project {budget.project_label!r}")
    if not parts:
        parts.append("tenant")
    if budget.model:
        parts.append(f"model {budget.model}")
    return ", ".join(parts)


def spec_from_budget(budget) -> BudgetSpec:
    """A Budget row → BudgetSpec (plain attribute access; no query beyond the row itself)."""
    return BudgetSpec(
        id=budget.id, limit=Decimal(budget.limit), period=budget.period, action=budget.action,
        downgrade_threshold=Decimal(budget.downgrade_threshold), model=budget.model or "",
        scope=budget.scope, tenant_id=budget.tenant_id, api_key_id=budget.api_key_id,
        user_label=budget.user_label or "", project_label=budget.project_label or "",
        alert_thresholds=tuple(budget.alert_thresholds or ()),
    )


def applicable(budgets: Iterable[BudgetSpec], *, key_id: int | None = None, user_label: str | None = None,
               project_label: str | None = None, model: str | Iterable[str] | None = None) -> list[BudgetSpec]:
    """The budgets a request counts against: every narrowing a budget sets (key, user, project, model) must
    match the request; a budget that sets none is tenant-wide. `model` may be several names (the requested one
    and the catalogue id it resolved to)."""
    models = {model} if isinstance(model, str) else set(model or ())
    out = []
    for spec in budgets:
        if spec.api_key_id is not None and spec.api_key_id != key_id:
            continue
        if spec.user_label and spec.user_label != user_label:
            continue
        if spec.project_label and spec.project_label != project_label:
            continue
        if spec.model and spec.model not in models:
            continue
        out.append(spec)
    return out


def check_alerts(spec: BudgetSpec, used_before: Decimal, used_after: Decimal) -> list:
    """Thresholds (percent of the limit) crossed by going from used_before to used_after."""
    crossed = []
    for threshold in spec.alert_thresholds:
        mark = spec.limit * Decimal(str(threshold)) / 100
        if used_before < mark <= used_after:
            crossed.append(threshold)
    return crossed
