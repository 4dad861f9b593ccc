from .budgets import Budget, BudgetAlert
from .rollup import UsageDaily, UsageRollupDay
from .rules import CostRule
from .usage import UsageRecord

__all__ = ["Budget", "BudgetAlert", "CostRule", "UsageDaily", "UsageRecord", "UsageRollupDay"]
