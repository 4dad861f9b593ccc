"""Cost-optimisation rules: data (CostRule rows) in, routing effects out.

A rule is `conditions` (all must hold) → one `action` with `params`. Rules run in ascending `priority` (ties by
id); a matching rule with `stop_processing` ends the run. Every rule's conditions are tested against the request
as the client sent it, not against what an earlier rule changed, so the order of rules never changes which ones
match (only which route wins and whether a stop cuts the run short).

Conditions (a JSON object; every key must hold; unknown keys are refused). Shorthands:

    prompt_tokens_lt: int      prompt_tokens <  n          prompt_tokens_gt: int     prompt_tokens > n
    task_type_in: [..]         one of coding|analysis|creative|general|reasoning (a request naming no task
                               type counts as "general")
    model_in: [..]             the requested model id; entries may be fnmatch patterns ("gpt-4*")
    environment_in: [..]       settings.ENVIRONMENT ("development", "production", ...)
    spend_today_gt: USD        today's (UTC) spend of this tenant on the request's model is above this;
    spend_model: "id"          ... or on this model instead (with spend_today_gt or an engine condition
                               reading `spend_today`)
    simple_prompt: true        shorthand for prompt_tokens < 200 (SIMPLE_PROMPT_MAX_TOKENS) and task type
                               "general"; only `true` is accepted

and, beside them, rules-engine conditions keyed by their kind (`"Expression": "prompt_tokens > 1000"`,
`"Rule": "name"`, `"Or": [...]`, …), or the whole object one internally tagged engine condition (`{"type":
...}`). All of it compiles to one engine condition over the request's facts (`cost_rule_conditions`), at save
time (problems are validation errors) and when the snapshot loads; requests only evaluate it.

Actions:

    route_to_model   {"model": "gpt-4o-mini"}            the first matching one wins
    prefer_provider  {"providers": ["ollama", ...]}      provider slugs or types, in order; all matching rules add
    apply_rate_limit {"requests_per_minute": n, "tokens_per_minute": m}   at least one; every matching rule adds
                     a bucket keyed f"rule:{rule_id}:{requested_model}"

`evaluate()` is pure and allocation-light: the gateway calls it per request with plain data from its snapshot
(`rule_specs`/`active_rule_specs`, holding the compiled conditions) and today's spend (`spend_today_many`, one
Redis round trip); it asks the engine for verdicts only (`passes`). `explain()` gives the engine's explanation
of each rule's verdict for the same facts, for dry runs and debugging.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.billing import cost_rule_conditions as conditions_
from apps.billing.money import from_units, to_units
from apps.core.redis_backoff import REDIS_ERRORS, backoff_for
from apps.core.vocabulary import DEFAULT_TASK_TYPE, TASK_TYPES
from apps.rules.engine import KINDS, Compiled, RuleError, passes
from apps.rules.engine import evaluate as engine_evaluate

logger = logging.getLogger("apps.billing.cost_rules")

SIMPLE_PROMPT_MAX_TOKENS = conditions_.SIMPLE_PROMPT_MAX_TOKENS

ROUTE_TO_MODEL = "route_to_model"
PREFER_PROVIDER = "prefer_provider"
APPLY_RATE_LIMIT = "apply_rate_limit"
ACTIONS = (ROUTE_TO_MODEL, PREFER_PROVIDER, APPLY_RATE_LIMIT)

CONDITION_KEYS = conditions_.SHORTHANDS
PARAM_KEYS = {
    ROUTE_TO_MODEL: ("model",),
    PREFER_PROVIDER: ("providers",),
    APPLY_RATE_LIMIT: ("requests_per_minute", "tokens_per_minute"),
}
MAX_LIST_ITEMS = 100
MAX_NAME_LENGTH = 200
MAX_TOKENS = 10_000_000
MAX_PER_MINUTE = 10_000_000
MAX_SPEND = Decimal("9000000")  # as budgets: exact in nano-dollar counters


# ---- validation -----------------------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value, key: str, problems: list[str], *, allowed: Iterable[str] | None = None) -> None:
    if not isinstance(value, list) or not value:
        problems.append(f"{key}: must be a non-empty list of strings.")
        return
    if len(value) > MAX_LIST_ITEMS:
        problems.append(f"{key}: at most {MAX_LIST_ITEMS} entries.")
        return
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_NAME_LENGTH:
            problems.append(f"{key}: every entry must be a non-empty string of at most {MAX_NAME_LENGTH} "
                            "characters.")
            return
    if allowed is not None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            problems.append(f"{key}: unknown value(s) {', '.join(unknown)}; choose from {', '.join(allowed)}.")


def _usd(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_SPEND:
        return None
    return amount


def _condition_problems(conditions, named: Mapping | None = None) -> list[str]:
    if not isinstance(conditions, dict):
        return ["Must be a JSON object (shorthand keys and/or rules-engine conditions keyed by kind)."]
    if "type" in conditions:  # one internally tagged engine condition: the engine checks all of it
        return conditions_.engine_problems(conditions, named)
    problems = [f"{key}: unknown condition; known: {', '.join(CONDITION_KEYS)}, or a rules-engine kind "
                f"({', '.join(KINDS)})." for key in conditions if key not in CONDITION_KEYS and key not in KINDS]
    for key in ("prompt_tokens_lt", "prompt_tokens_gt"):
        if key in conditions:
            value = conditions[key]
            if not _is_int(value) or not 0 <= value <= MAX_TOKENS:
                problems.append(f"{key}: must be an integer from 0 to {MAX_TOKENS}.")
    lt, gt = conditions.get("prompt_tokens_lt"), conditions.get("prompt_tokens_gt")
    if _is_int(lt) and _is_int(gt) and gt >= lt - 1:
        problems.append("prompt_tokens_gt and prompt_tokens_lt leave no token count that matches.")
    if "task_type_in" in conditions:
        _names(conditions["task_type_in"], "task_type_in", problems, allowed=TASK_TYPES)
    for key in ("model_in", "environment_in"):
        if key in conditions:
            _names(conditions[key], key, problems)
    if "model_in" in conditions and not any(problem.startswith("model_in") for problem in problems):
        problems += [f"model_in: the pattern {pattern!r} cannot be matched ({problem.split(': ', 1)[-1]})."
                     for pattern in conditions["model_in"]
                     for problem in conditions_.engine_problems(conditions_.translate({"model_in": [pattern]})[0],
                                                                 None)]
    if "spend_today_gt" in conditions and _usd(conditions["spend_today_gt"]) is None:
        problems.append(f"spend_today_gt: must be a USD amount from 0 to {MAX_SPEND}.")
    if "spend_model" in conditions:
        value = conditions["spend_model"]
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
            problems.append("spend_model: must be a model id.")
        elif not problems and not _reads_spend(conditions, named):
            problems.append("spend_model: only meaningful together with spend_today_gt (or an engine condition "
                            "reading spend_today).")
    if "simple_prompt" in conditions and conditions["simple_prompt"] is not True:
        problems.append("simple_prompt: only true is accepted (leave it out otherwise).")
    return problems + conditions_.engine_problems(conditions, named)


def _reads_spend(conditions: dict, named: Mapping | None) -> bool:
    if "spend_today_gt" in conditions:
        return True
    try:
        return conditions_.mentions_spend(conditions_.compile_conditions(conditions, named))
    except RuleError:
        return True  # the engine's own problems are reported instead


def _param_problems(action: str, params) -> list[str]:
    if not isinstance(params, dict):
        return ["Must be a JSON object."]
    if action not in PARAM_KEYS:
        return []  # the action's own error says it
    known = PARAM_KEYS[action]
    problems = [f"{key}: unknown parameter for {action}; known: {', '.join(known)}."
                for key in params if key not in known]
    if action == ROUTE_TO_MODEL:
        model = params.get("model")
        if not isinstance(model, str) or not model.strip() or len(model) > MAX_NAME_LENGTH:
            problems.append("model: required, the model id to route to.")
    elif action == PREFER_PROVIDER:
        _names(params.get("providers"), "providers", problems)
    else:
        given = [key for key in known if key in params]
        if not given:
            problems.append("Give requests_per_minute and/or tokens_per_minute.")
        for key in given:
            value = params[key]
            if not _is_int(value) or not 1 <= value <= MAX_PER_MINUTE:
                problems.append(f"{key}: must be an integer from 1 to {MAX_PER_MINUTE}.")
    return problems


def validate_rule(conditions: dict, action: str, params: dict, *, named: Mapping | None = None) -> None:
    """Raise a ValidationError keyed by field (`conditions`, `action`, `params`) naming every problem.

    `named`: the rule names engine conditions may reference (`apps.rules.selectors.named_rules_for(tenant=…)`
    for a tenant's rule; the engine's built-ins when None, as for global rules)."""
    errors: dict[str, list[str]] = {}
    if action not in ACTIONS:
        errors["action"] = [f"Unknown action {action!r}; choose from {', '.join(ACTIONS)}."]
    for name, problems in (("conditions", _condition_problems(conditions, named)),
                           ("params", _param_problems(action, params))):
        if problems:
            errors[name] = problems
    if errors:
        raise ValidationError(errors)


# ---- compiled rules and evaluation ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: int
    name: str
    priority: int
    conditions: dict  # as written (spend_today_gt as a Decimal)
    action: str
    params: dict
    stop: bool
    tenant_id: int | None = None  # None: a global rule
    # The conditions compiled for the engine; compiled from `conditions` (built-in names only) when not given.
    compiled: Compiled | None = field(default=None, compare=False, repr=False)
    uses_spend: bool = field(default=False, compare=False)

    def __post_init__(self):
        if self.compiled is None:
            object.__setattr__(self, "compiled", conditions_.compile_conditions(self.conditions))
        object.__setattr__(self, "uses_spend", conditions_.mentions_spend(self.compiled))

    def spend_model(self, requested_model: str) -> str | None:
        if not self.uses_spend:
            return None
        return self.conditions.get("spend_model") or requested_model


NamedRules = Callable[[int | None], Mapping | None]


def rule_specs(rules: Iterable, named_for: NamedRules | None = None) -> list[RuleSpec]:
    """CostRule instances (or anything with their attributes) → enabled, valid, compiled specs in evaluation
    order. `named_for(tenant_id)` gives the rule names a tenant's conditions may reference (None: built-ins).

    A row that fails validation (edited around the admin/API, or naming a rule since deleted) is skipped with
    a warning rather than taking the gateway's snapshot down."""
    specs = []
    for rule in rules:
        if not rule.enabled:
            continue
        named = named_for(rule.tenant_id) if named_for is not None and rule.tenant_id is not None else None
        try:
            validate_rule(rule.conditions, rule.action, rule.params, named=named)
        except ValidationError as exc:
            logger.warning("cost rule %s skipped: invalid (%s)", rule.pk, "; ".join(exc.messages))
            continue
        conditions = dict(rule.conditions)
        if "spend_today_gt" in conditions:
            conditions["spend_today_gt"] = _usd(conditions["spend_today_gt"])
        specs.append(RuleSpec(id=rule.pk, name=rule.name, priority=rule.priority, conditions=conditions,
                              action=rule.action, params=dict(rule.params), stop=rule.stop_processing,
                              tenant_id=rule.tenant_id,
                              compiled=conditions_.compile_conditions(conditions, named)))
    specs.sort(key=lambda spec: (spec.priority, spec.id))
    return specs


def active_rule_specs(rules: Iterable, named_for: NamedRules | None = None) -> list[RuleSpec]:
    """`rule_specs`, or none at all while settings.ENABLE_COST_OPTIMIZATION is off."""
    if not getattr(settings, "ENABLE_COST_OPTIMIZATION", False):
        return []
    return rule_specs(rules, named_for)


@dataclass(slots=True)
class RequestFacts:
    model: str  # the model id the client asked for
    prompt_tokens: int
    task_type: str  # DEFAULT_TASK_TYPE when the request names none
    environment: str
    spend_today_by_model: Mapping[str, Decimal] = field(default_factory=dict)  # USD today per model id

    def engine_facts(self) -> dict:
        """The facts conditions see (`spend_today`: the requested model's; `_facts_for` sets a rule's own)."""
        return {"model": self.model, "prompt_tokens": self.prompt_tokens,
                "task_type": self.task_type or DEFAULT_TASK_TYPE, "environment": self.environment,
                "spend_today": self.spend_today_by_model.get(self.model, _ZERO)}


_ZERO = Decimal(0)


@dataclass(slots=True)
class RuleEffects:
    model: str | None = None  # route_to_model
    prefer_providers: list[str] = field(default_factory=list)
    rate_limits: list[dict] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)


def spend_models_needed(rules: Iterable[RuleSpec], requested_model: str) -> set[str]:
    """The model ids whose spend today the rules may look at for this request (fetch only these)."""
    return {name for spec in rules if (name := spec.spend_model(requested_model))}


def _facts_for(spec: RuleSpec, engine_facts: dict, facts: RequestFacts) -> dict:
    if spec.uses_spend:
        engine_facts["spend_today"] = facts.spend_today_by_model.get(spec.conditions.get("spend_model")
                                                                     or facts.model, _ZERO)
    return engine_facts


def evaluate(rules: list[RuleSpec], facts: RequestFacts) -> RuleEffects:
    effects = RuleEffects()
    engine_facts = facts.engine_facts()
    for spec in rules:
        if not passes(spec.compiled, _facts_for(spec, engine_facts, facts)):
            continue
        effects.matched.append(spec.id)
        if spec.action == ROUTE_TO_MODEL:
            if effects.model is None:
                effects.model = spec.params["model"]
        elif spec.action == PREFER_PROVIDER:
            for provider in spec.params["providers"]:
                if provider not in effects.prefer_providers:
                    effects.prefer_providers.append(provider)
        else:
            effects.rate_limits.append({"key": f"rule:{spec.id}:{facts.model}",
                                        "requests_per_minute": spec.params.get("requests_per_minute"),
                                        "tokens_per_minute": spec.params.get("tokens_per_minute")})
        if spec.stop:
            break
    return effects


def explain(rules: list[RuleSpec], facts: RequestFacts) -> list[dict]:
    """Why each rule did or did not match these facts, in evaluation order up to a matching stop rule:
    `{"id", "name", "matched", "condition" (the engine's canonical form), "facts", "explanation"}`."""
    out = []
    engine_facts = facts.engine_facts()
    for spec in rules:
        seen = dict(_facts_for(spec, engine_facts, facts))
        result = engine_evaluate(spec.compiled, seen)
        out.append({"id": spec.id, "name": spec.name, "matched": result.passed,
                    "condition": spec.compiled.canonical, "facts": {**seen, "spend_today": str(seen["spend_today"])},
                    "explanation": result.explanation})
        if result.passed and spec.stop:
            break
    return out


# ---- today's spend per tenant and model (Redis) ---------------------------------------------------------

SPEND_KEY_PREFIX = "cb:spend:day:"
SPEND_KEY_TTL_SECONDS = 2 * 86400
REDIS_BACKOFF_SECONDS = 1.0  # after a connection error, this client is not even tried for this long


def _backoff(redis):
    return backoff_for(redis, "spend counter", seconds=REDIS_BACKOFF_SECONDS, logger=logger)


def spend_key(tenant_id: int, model: str, now: datetime | None = None) -> str:
    day = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d")
    return f"{SPEND_KEY_PREFIX}{day}:{tenant_id}:{model}"


async def add_spend(redis, tenant_id: int, model: str, amount: Decimal, *, now: datetime | None = None) -> bool:
    """Count `amount` USD (settled cost, ≥ 0) against today's (UTC) counter. False when Redis failed: the
    counter then under-counts, which only delays spend rules; it never fails the request."""
    units = to_units(amount)
    if units < 0:
        raise ValueError("spend cannot be negative")
    if units == 0:
        return True
    backoff = _backoff(redis)
    if backoff.down:
        return False
    key = spend_key(tenant_id, model, now)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.incrby(key, units)
            pipe.expire(key, SPEND_KEY_TTL_SECONDS)
            await pipe.execute()
    except REDIS_ERRORS as exc:
        backoff.failed("spend update (spend not counted)", exc)
        return False
    return True


async def spend_today_many(redis, tenant_id: int, models: Iterable[str], *,
                           now: datetime | None = None) -> dict[str, Decimal]:
    """Today's spend per model in one round trip; zero for unknown models and while Redis fails."""
    names = list(dict.fromkeys(models))
    if not names:
        return {}
    values = [None] * len(names)
    backoff = _backoff(redis)
    if not backoff.down:
        try:
            values = await redis.mget([spend_key(tenant_id, name, now) for name in names])
        except REDIS_ERRORS as exc:
            backoff.failed("spend read (spend rules see zero)", exc)
    return {name: from_units(value) if value is not None else Decimal(0) for name, value in zip(names, values,
                                                                                                  strict=True)}


async def spend_today(redis, tenant_id: int, model: str, *, now: datetime | None = None) -> Decimal:
    return (await spend_today_many(redis, tenant_id, [model], now=now))[model]

