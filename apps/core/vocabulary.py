"""Words the whole product shares: routing strategies, task types and the built-in virtual models.

They sit in core because settings, tenants, providers, billing and the gateway all name them and none of those
may import another for a tuple of strings.
"""

ROUTING_STRATEGIES = (
    "balanced",
    "cost_optimized",
    "performance_first",
    "reliability_first",
    "task_specific",
    "load_balanced",
    "failover_chain",
    "model_specific",
)
TASK_TYPES = ("coding", "analysis", "creative", "general", "reasoning")
DEFAULT_TASK_TYPE = "general"

# Built-in virtual models and the strategy each routes with.
VIRTUAL_MODELS = {
    "auto": "balanced",
    "cb:smart-chat": "balanced",
    "cb:cost-optimal": "cost_optimized",
    "cb:fastest": "performance_first",
    "cb:reliable": "reliability_first",
    "cb:coding": "task_specific",
    "cb:analysis": "task_specific",
    "cb:creative": "task_specific",
}
