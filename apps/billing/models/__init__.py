from .budgets import Budget, BudgetAlert
from .cost_rules import CostRule
from .request_logs import RequestLog
from .rollup import UsageDaily, UsageRollupDay
from .usage import UsageRecord

__all__ = ["Budget", "BudgetAlert", "CostRule", "RequestLog", "UsageDaily", "UsageRecord", "UsageRollupDay"]
