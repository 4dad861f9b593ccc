"""`python -m bench.cost_rules`: per-request cost of evaluating cost rules (the gateway's hot path), against 50 µs.

The seed's three example rules (shorthands, compiled onto the rules engine), and the same three with engine
conditions mixed in (a CEL expression, a named rule, a tagged Or); 10,000 evaluations per case, best of 5.
"""

from __future__ import annotations

import os
import timeit
from decimal import Decimal

TARGET_US = 50.0
N = 10_000

SEED = [
    ({"simple_prompt": True}, "route_to_model", {"model": "gpt-4o-mini"}),
    ({"environment_in": ["development"]}, "prefer_provider", {"providers": ["ollama"]}),
    ({"model_in": ["gpt-4"], "spend_today_gt": 10}, "apply_rate_limit", {"requests_per_minute": 5}),
]
MIXED = [
    ({"simple_prompt": True, "Expression": "prompt_tokens > 10"}, "route_to_model", {"model": "gpt-4o-mini"}),
    ({"Or": [{"FieldEquals": {"field": "environment", "value": "development"}}, {"Rule": "has_content"}]},
     "prefer_provider", {"providers": ["ollama"]}),
    ({"model_in": ["gpt-4*"], "Expression": "spend_today > 10.0"}, "apply_rate_limit", {"requests_per_minute": 5}),
]
REQUESTS = {
    "all match": dict(model="gpt-4", prompt_tokens=50, task_type="general", environment="development",
                      spend_today_by_model={"gpt-4": Decimal("12.5")}),
    "none match": dict(model="gpt-4o", prompt_tokens=900, task_type="coding", environment="production",
                       spend_today_by_model={"gpt-4o": Decimal("0")}),
}


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cbplatform.settings.local")
    from apps.billing.cost_rules import RequestFacts, RuleSpec, evaluate

    worst = 0.0
    for label, rules in (("seed rules", SEED), ("mixed engine forms", MIXED)):
        specs = [RuleSpec(id=i + 1, name=f"r{i + 1}", priority=i, conditions=conditions, action=action,
                          params=params, stop=False) for i, (conditions, action, params) in enumerate(rules)]
        for case, fields in REQUESTS.items():
            facts = RequestFacts(**fields)
            best = min(timeit.repeat(lambda specs=specs, facts=facts: evaluate(specs, facts), number=N, repeat=5))
            per_request = best / N * 1e6
            worst = max(worst, per_request)
            print(f"{label:20s} {case:11s} {per_request:7.2f} µs  matched {evaluate(specs, facts).matched}")
    print(f"{'PASS' if worst <= TARGET_US else 'MISS'}: worst {worst:.2f} µs per request (target {TARGET_US} µs)")
    return 0 if worst <= TARGET_US else 1


if __name__ == "__main__":
    raise SystemExit(main())
