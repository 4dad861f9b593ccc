from .budgets import Budget, BudgetAlert
from .usage import UsageRecord

__all__ = ["Budget", "BudgetAlert", "UsageRecord"]
