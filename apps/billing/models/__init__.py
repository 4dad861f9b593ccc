from .budgets import Budget, BudgetAlert
from .cost_rules import CostRule
from .rollup import UsageDaily, UsageRollupDay
from .usage import UsageRecord

__all__ = ["Budget", "BudgetAlert", "CostRule", "UsageDaily", "UsageRecord", "UsageRollupDay"]
