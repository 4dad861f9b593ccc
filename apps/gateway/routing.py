"""The routing engine: from a model name's candidates (provider × model, in preference order) to the order in
which the gateway tries them. Pure and synchronous: no I/O, no ORM, no Redis; health comes in as a mapping.

`plan()` works in three steps:

1. **Exclusion.** A candidate that cannot serve the request (capabilities, context length) or breaks one of
   the request's constraints is excluded, under the constraint's name. Every constraint a candidate breaks
   is recorded, so the 400 for "nothing left" tells the caller everything they would have to relax.
   Exclusion names: tools, vision, json_mode, streaming, context_length, max_cost_per_1k_tokens,
   max_latency_ms, provider.only, provider.ignore, provider.max_price, provider.data_collection and, for
   model_specific route tables, route_table, cost_limit, performance_target.
2. **Ordering.** Precedence, strongest first: the tier (the requested model before OpenRouter `models`,
   before `fallback_models`), then the caller's explicit preferences (provider.order, prefer_models,
   preferred_providers, prefer_large_context), then the strategy. Every sort is stable, so ties keep the
   incoming preference order (tenant's own providers first, then by priority).
   `max_latency_ms` and a route's `performance_target` compare the whole-request latency average.
3. **Health.** `provider.allow_fallbacks: false` keeps one candidate per tier (or the `provider.order` ones);
   deployments that are unavailable now (circuit open, or rate limited) move to the end, never out: when
   everything is down the gateway still tries.

Prices: the catalogue's are USD per token. The per-request price is blended per 1,000 tokens:
(input_price × prompt_tokens + output_price × expected_output) / (prompt_tokens + expected_output) × 1000,
with expected_output = max_completion_tokens/max_tokens, or EXPECTED_OUTPUT_TOKENS (256) when the request
sets none. Unpriced (pass-through) models count as free; unmeasured latency never excludes.

`provider.require_parameters` needs no work of its own: the capability filter always applies (a tools request
never goes to a model without tools), which is OpenRouter's require_parameters behaviour for the
parameters the catalogue describes (tools, vision, JSON mode, streaming).
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from apps.core.errors import InternalError, NoCandidate
from apps.core.vocabulary import ROUTING_STRATEGIES
from apps.providers.route_options import (
    TASK_TYPES,
    Needs,
    RouteOptions,
    parse_route_options,
    request_needs,
    split_suffix,
)

from .prompt_tokens import PromptTokenCounter, estimate_prompt_tokens
from .resolve import TYPE_PREFIXES, Candidate
from .snapshot import ModelInfo, ProviderInfo

__all__ = [
    "TASK_TYPES", "CandidateHealth", "HealthLike", "Needs", "Plan", "PromptTokenCounter", "RouteOptions",
    "RouteRule", "blended_price_per_1k", "candidate_key", "estimate_prompt_tokens", "infer_task",
    "parse_cost_limit", "parse_duration_ms", "parse_route_options", "parse_route_table", "plan",
    "request_needs", "split_suffix",
]

STRATEGIES = frozenset(ROUTING_STRATEGIES)
EXPECTED_OUTPUT_TOKENS = 256
PROBE_SHARE = 0.1
DEFAULT_WEIGHTS = {"cost": 0.4, "latency": 0.4, "errors": 0.2}
# Error rates closer together than this are not stretched over the whole 0..1 range in `balanced`: 1% vs 2%
# is noise, not a reason to rank a cheaper, faster deployment last.
ERROR_SPAN_FLOOR = 0.05
LARGE_CONTEXT_TOKENS = 100_000  # prefer_large_context: windows at least this large go first
MAX_LABELS = 10  # per constraint in the "nothing left" message

CONSTRAINT_PARAMS = {
    "tools": "tools",
    "vision": "messages",
    "json_mode": "response_format",
    "streaming": "stream",
    "context_length": "messages",
    "max_cost_per_1k_tokens": "circuit_breaker.max_cost_per_1k_tokens",
    "max_latency_ms": "circuit_breaker.max_latency_ms",
    "provider.only": "provider.only",
    "provider.ignore": "provider.ignore",
    "provider.max_price": "provider.max_price",
    "provider.data_collection": "provider.data_collection",
    "route_table": "model",
    "cost_limit": "model",
    "performance_target": "model",
}


# ---- health ---------------------------------------------------------------------------------------------
class HealthLike(Protocol):
    requests: int
    errors: int
    error_rate: float
    consecutive_failures: int
    latency_ms: float | None
    ttft_ms: float | None
    circuit: str
    rate_limited_until: float | None
    inflight: int

    @property
    def available(self) -> bool: ...


@dataclass(slots=True)
class CandidateHealth:
    """What routing reads about one candidate's live health (the resilience layer may pass its own type)."""

    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    consecutive_failures: int = 0
    latency_ms: float | None = None  # moving average of the whole request
    ttft_ms: float | None = None  # moving average of time to first token (streams)
    circuit: str = "closed"  # closed | open | half_open
    rate_limited_until: float | None = None  # epoch seconds
    inflight: int = 0

    @property
    def available(self) -> bool:
        if self.circuit == "open":
            return False
        return not (self.rate_limited_until and self.rate_limited_until > time.time())


def candidate_key(candidate: Candidate) -> str:
    return f"{candidate.provider.id}:{candidate.model.model_id}"


def _label(candidate: Candidate) -> str:
    return f"{candidate.provider.slug}/{candidate.model.model_id}"


# ---- route tables (model_specific) ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouteRule:
    primary: str
    fallback: tuple[str, ...] = ()
    cost_limit_per_1k: float | None = None
    performance_target_ms: float | None = None


_COST = re.compile(r"^\$?\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:(?:/|per\s+)\s*([^\s_]*)[\s_]*(tokens?|tok)?)?$", re.I)
_COST_UNITS = {"1k": 1.0, "k": 1.0, "1000": 1.0, "thousand": 1.0, "1m": 0.001, "m": 0.001, "1000000": 0.001,
               "million": 0.001, "": 1000.0, "token": 1000.0, "tok": 1000.0}
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(ms|msec|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)?$",
                       re.I)


def parse_cost_limit(value) -> float:
    """A route table's cost limit in USD per 1k tokens: 0.03, "$0.03/1k_tokens", "$30/1M tokens",
    "$0.00003/token", "0.03" (a bare number is per 1k tokens)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"cost_limit {value} is negative")
        return float(value)
    match = _COST.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"cost_limit {value!r} is not a price like \"$0.03/1k_tokens\"")
    number, unit, per_token = match.group(1), (match.group(2) or "").lower(), match.group(3)
    if "/" not in value and "per" not in value.lower():
        return float(number)
    if unit not in _COST_UNITS or (unit == "" and not per_token):
        raise ValueError(f"cost_limit {value!r}: unknown unit (use /1k_tokens, /1M_tokens or /token)")
    return float(number) * _COST_UNITS[unit]


def parse_duration_ms(value) -> float:
    """A performance target in milliseconds: 1500, "1500ms", "2s", "1.5 seconds" (a bare number is ms)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"performance_target {value} must be positive")
        return float(value)
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"performance_target {value!r} is not a duration like \"2s\" or \"1500ms\"")
    unit = (match.group(2) or "ms").lower()
    scale = 1.0 if unit.startswith(("ms", "msec", "milli")) else 60_000.0 if unit.startswith("m") else 1000.0
    number = float(match.group(1)) * scale
    if number <= 0:
        raise ValueError(f"performance_target {value!r} must be positive")
    return number


def parse_route_rule(raw) -> RouteRule:
    if isinstance(raw, RouteRule):
        return raw
    if not isinstance(raw, dict):
        raise ValueError("a route must be an object with at least \"primary\"")
    unknown = set(raw) - {"primary", "fallback", "cost_limit", "performance_target"}
    if unknown:
        raise ValueError(f"unknown route key(s): {', '.join(sorted(unknown))}")
    primary = raw.get("primary")
    if not isinstance(primary, str) or not primary.strip():
        raise ValueError("\"primary\" must name a provider type or slug")
    fallback = raw.get("fallback") or []
    if isinstance(fallback, str):
        fallback = [fallback]
    if not isinstance(fallback, list) or not all(isinstance(f, str) and f.strip() for f in fallback):
        raise ValueError("\"fallback\" must be a list of provider types or slugs")
    cost = raw.get("cost_limit")
    target = raw.get("performance_target")
    return RouteRule(primary.strip(), tuple(f.strip() for f in fallback),
                     None if cost is None else parse_cost_limit(cost),
                     None if target is None else parse_duration_ms(target))


def parse_route_table(raw: Mapping) -> dict[str, RouteRule]:
    """Validate a tenant's route table ({model: {"primary", "fallback", "cost_limit", "performance_target"}}).
    Raises ValueError naming the route; call it where the table is saved or loaded, not per request."""
    table = {}
    for name, rule in (raw or {}).items():
        try:
            table[name] = parse_route_rule(rule)
        except ValueError as exc:
            raise ValueError(f"route {name!r}: {exc}") from None
    return table


# ---- task inference -------------------------------------------------------------------------------------
def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Per task: single words, word prefixes, and phrases. Matching is set lookups over the message's words (fast
# and linear), not one big regex. Ties go to the earlier task.
_TASK_RULES = (
    ("coding",
     _set("code coding function functions bug bugs python javascript typescript java rust golang sql regex "
          "traceback stacktrace exception script class def import html css json bash shell git "
          "api compiler programming"),
     ("debug", "compil", "refactor"),
     ("```", "stack trace", "unit test")),
    ("analysis",
     _set("compare comparison data dataset evaluate summarize summarise summary insight insights trend "
          "trends statistics statistic metrics"),
     ("analy", "assess"),
     ("explain why", "pros and cons", "trade-off", "tradeoff")),
    ("creative",
     _set("poem poems poetry story stories creative imagine fiction lyrics song haiku novel screenplay fable "
          "limerick sonnet"),
     (),
     ("fairy tale",)),
    ("reasoning",
     _set("prove proof math maths mathematics equation equations solve puzzle logic riddle calculate "
          "theorem"),
     (),
     ("step by step",)),
)
_WORDS = re.compile(r"[a-z]+")
_SCAN_CHARS = 4000  # of each end of a long message: enough to classify, bounded cost


def _last_user_text(messages) -> str:
    for message in reversed(messages or ()):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
        return ""
    return ""


def infer_task(messages) -> str:
    """coding | analysis | creative | reasoning | general, from keywords in the last user message.
    Deterministic; scans at most 8,000 characters. A code fence counts triple."""
    text = _last_user_text(messages)
    if len(text) > 2 * _SCAN_CHARS:
        text = text[:_SCAN_CHARS] + "\n" + text[-_SCAN_CHARS:]
    text = text.lower()
    words = set(_WORDS.findall(text))
    best, best_score = "general", 0
    for task, keywords, prefixes, phrases in _TASK_RULES:
        score = len(words & keywords)
        if prefixes:
            score += sum(1 for p in prefixes if any(w.startswith(p) for w in words))
        score += sum(3 if p == "```" else 1 for p in phrases if p in text)
        if score > best_score:
            best, best_score = task, score
    return best


# ---- plan -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Plan:
    ordered: list[Candidate]
    excluded: dict[str, list[str]] = field(default_factory=dict)  # constraint → "provider/model" labels
    strategy: str = "failover_chain"
    task: str | None = None  # task_specific: the task routed for
    probed: Candidate | None = None  # performance_first: the unmeasured candidate moved first, if any


@dataclass(slots=True, eq=False)
class _Row:
    index: int
    candidate: Candidate
    tier: int
    health: object | None
    prompt_tokens: int
    price: float  # blended USD per 1k tokens for this request


def blended_price_per_1k(model: ModelInfo, prompt_tokens: int, expected_output: int) -> float:
    total = prompt_tokens + expected_output
    if total <= 0:
        return float(model.input_price) * 1000
    return (float(model.input_price) * prompt_tokens + float(model.output_price) * expected_output) / total * 1000


def _provider_matches(provider: ProviderInfo, name: str) -> bool:
    name = name.strip().lower()
    return name in (provider.slug.lower(), provider.type) or TYPE_PREFIXES.get(name) == provider.type


def _model_matches(candidate: Candidate, name: str) -> bool:
    model = candidate.model
    if name in (model.model_id, model.upstream_name) or name in model.aliases:
        return True
    if "/" in name:
        prefix, rest = name.split("/", 1)
        return _provider_matches(candidate.provider, prefix) and _model_matches(candidate, rest)
    return False


def _first_match(names: Sequence[str], test) -> int:
    for index, name in enumerate(names):
        if test(name):
            return index
    return len(names)


def _latency(health, needs: Needs, sort: str | None) -> float | None:
    if health is None:
        return None
    if needs.stream and sort != "throughput" and health.ttft_ms is not None:
        return health.ttft_ms
    return health.latency_ms


def _measured_errors(rows: list[_Row]) -> list[float]:
    return [r.health.error_rate for r in rows if r.health is not None and r.health.requests > 0]


def _error_rate(row: _Row, fallback: float) -> float:
    h = row.health
    return h.error_rate if h is not None and h.requests > 0 else fallback


def _normalise(values: list[float], floor: float = 0.0) -> list[float]:
    low, high = min(values), max(values)
    span = max(high - low, floor)
    if span <= 0:
        return [0.0] * len(values)
    return [(v - low) / span for v in values]


def _balanced_scores(rows: list[_Row], needs: Needs, options: RouteOptions, weights: Mapping) -> list[float]:
    if not rows:
        return []
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    costs = _normalise([r.price for r in rows])
    raw = [_latency(r.health, needs, options.sort) for r in rows]
    measured = [v for v in raw if v is not None]
    if measured:
        median = statistics.median(measured)
        latencies = _normalise([median if v is None else v for v in raw])
    else:
        latencies = [0.5] * len(rows)
    seen = _measured_errors(rows)
    median_errors = statistics.median(seen) if seen else 0.0
    errors = _normalise([_error_rate(r, median_errors) for r in rows], ERROR_SPAN_FLOOR)
    return [w["cost"] * c + w["latency"] * lat + w["errors"] * e for c, lat, e in zip(costs, latencies, errors,
                                                                                     strict=True)]


def _weight(provider: ProviderInfo) -> float:
    value = provider.options.get("weight", 1) if isinstance(provider.options, dict) else 1
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return 1.0
    return float(value)


class _Order:
    """Strategy orderings. Each takes rows in incoming order and returns them ordered (stable)."""

    def __init__(self, *, needs: Needs, options: RouteOptions, rng: random.Random, weights, probe_share: float,
                 rule: RouteRule | None):
        self.needs, self.options, self.rng = needs, options, rng
        self.weights, self.probe_share, self.rule = weights, probe_share, rule
        self.task: str | None = None
        self.probed: _Row | None = None

    def cost_optimized(self, rows):
        return sorted(rows, key=lambda r: r.price)

    def performance_first(self, rows):
        timed = [(r, _latency(r.health, self.needs, self.options.sort)) for r in rows]
        measured = sorted((pair for pair in timed if pair[1] is not None), key=lambda pair: pair[1])
        unmeasured = [r for r, value in timed if value is None]
        ordered = [r for r, _ in measured] + unmeasured
        if measured and unmeasured and self.rng.random() < self.probe_share:
            probed = self.probed = unmeasured[self.rng.randrange(len(unmeasured))]
            ordered = [probed, *(r for r in ordered if r is not probed)]
        return ordered

    def balanced(self, rows):
        scores = _balanced_scores(rows, self.needs, self.options, self.weights)
        return [r for _, r in sorted(zip(scores, rows, strict=True), key=lambda pair: pair[0])]

    def reliability_first(self, rows):
        seen = _measured_errors(rows)
        median = statistics.median(seen) if seen else 0.0

        def key(r):
            h = r.health
            measured = h is not None and h.requests > 0
            return (_error_rate(r, median), h.consecutive_failures if h is not None else 0, not measured)

        return sorted(rows, key=key)

    def task_specific(self, rows):
        self.task = task = self.options.task_type or infer_task(self.needs.messages)
        balanced = self.balanced(rows)
        return sorted(balanced, key=lambda r: task not in r.candidate.model.tags)

    def load_balanced(self, rows):
        # Weighted sampling without replacement (Efraimidis–Spirakis): P(first) ∝ weight / (1 + in-flight).
        def key(r):
            inflight = getattr(r.health, "inflight", 0) or 0
            share = _weight(r.candidate.provider) / (1 + max(inflight, 0))
            u = self.rng.random()
            return u ** (1 / share) if share > 0 else -1.0

        return sorted(rows, key=key, reverse=True)

    def failover_chain(self, rows):
        return list(rows)

    def model_specific(self, rows):
        if self.rule is None:
            return list(rows)
        chain = (self.rule.primary, *self.rule.fallback)
        return sorted(rows, key=lambda r: _first_match(chain, lambda n: _provider_matches(r.candidate.provider, n)))


def _exclusions(row: _Row, needs: Needs, options: RouteOptions, rule: RouteRule | None) -> list[str]:
    model, provider, h = row.candidate.model, row.candidate.provider, row.health
    caps = model.capabilities
    broken = []
    if needs.tools and "tools" not in caps:
        broken.append("tools")
    if needs.vision and "vision" not in caps:
        broken.append("vision")
    if needs.json_mode and "json_mode" not in caps:
        broken.append("json_mode")
    if needs.streaming and "streaming" not in caps:
        broken.append("streaming")
    output = needs.max_output or 0
    if (model.context_window and row.prompt_tokens + output > model.context_window) or (
            model.max_output_tokens and output > model.max_output_tokens):
        broken.append("context_length")
    limit = options.max_cost_per_1k_tokens
    if limit is not None and row.price > limit * (1 + 1e-9):
        broken.append("max_cost_per_1k_tokens")
    latency = h.latency_ms if h is not None else None
    if options.max_latency_ms is not None and latency is not None and latency > options.max_latency_ms:
        broken.append("max_latency_ms")
    if options.only and not any(_provider_matches(provider, n) for n in options.only):
        broken.append("provider.only")
    if options.ignore and any(_provider_matches(provider, n) for n in options.ignore):
        broken.append("provider.ignore")
    prompt_cap, completion_cap = options.max_price_prompt, options.max_price_completion
    if (prompt_cap is not None and float(model.input_price) * 1e6 > prompt_cap * (1 + 1e-9)) or (
            completion_cap is not None and float(model.output_price) * 1e6 > completion_cap * (1 + 1e-9)):
        broken.append("provider.max_price")
    if options.data_collection == "deny" and provider.collects_data:
        broken.append("provider.data_collection")
    if rule is not None:
        if not any(_provider_matches(provider, n) for n in (rule.primary, *rule.fallback)):
            broken.append("route_table")
        if rule.cost_limit_per_1k is not None and row.price > rule.cost_limit_per_1k * (1 + 1e-9):
            broken.append("cost_limit")
        if rule.performance_target_ms is not None and latency is not None and latency > rule.performance_target_ms:
            broken.append("performance_target")
    return broken


def _no_candidate(excluded: dict[str, list[str]], needs: Needs) -> NoCandidate:
    if not excluded:
        return NoCandidate("No model is available for this request.", param="model")
    parts = []
    for name, labels in excluded.items():
        shown = ", ".join(labels[:MAX_LABELS])
        if len(labels) > MAX_LABELS:
            shown += f" and {len(labels) - MAX_LABELS} more"
        parts.append(f"{name} excluded {shown}")
    first = next(iter(excluded))
    param = CONSTRAINT_PARAMS.get(first, first)
    if first == "streaming" and not needs.stream:
        param = "circuit_breaker.require_streaming"
    return NoCandidate(f"No model meets the request's constraints: {'; '.join(parts)}.", param=param)


_RNG = random.Random()  # noqa: S311 - routing spread, not security


def plan(candidates: Sequence[Candidate], *, needs: Needs, options: RouteOptions, health: Mapping | None,
         tenant_routes: Mapping | None = None, rng: random.Random | None = None, weights: Mapping | None = None,
         prompt_tokens: int | Callable[[ModelInfo], int] | None = None, tiers: Sequence[int] | None = None,
         probe_share: float = PROBE_SHARE) -> Plan:
    """Order `candidates` (in preference order) for this request.

    health: candidate_key(c) → CandidateHealth-like; a missing key means never measured.
    tenant_routes: the tenant's model_specific route table (raw dicts or parse_route_table's RouteRules).
    weights: balanced weights overriding DEFAULT_WEIGHTS ({"cost", "latency", "errors"}).
    prompt_tokens: an int, or per model (a PromptTokenCounter(body)); None counts as 0.
    tiers: per candidate, its model's position in RouteOptions.model_chain() (default: all 0); a lower tier
    always goes first, whatever the strategy.
    Raises NoCandidate (400 `no_candidate_meets_constraints`) when exclusions leave nothing.
    """
    rng = rng or _RNG
    health = health or {}
    strategy = options.strategy
    rule = None
    if strategy == "model_specific" and tenant_routes and options.model in tenant_routes:
        try:
            rule = parse_route_rule(tenant_routes[options.model])
        except ValueError as exc:
            raise InternalError(f"The route table entry for `{options.model}` is invalid: {exc}.", param="model",
                                code="invalid_route_table") from None
    expected_output = needs.max_output or EXPECTED_OUTPUT_TOKENS
    count = prompt_tokens if callable(prompt_tokens) else None
    fixed = prompt_tokens if isinstance(prompt_tokens, int) else 0

    kept: list[_Row] = []
    excluded: dict[str, list[str]] = {}
    for index, candidate in enumerate(candidates):
        tokens = count(candidate.model) if count is not None else fixed
        row = _Row(index, candidate, tiers[index] if tiers is not None else 0, health.get(candidate_key(candidate)),
                   tokens, blended_price_per_1k(candidate.model, tokens, expected_output))
        broken = _exclusions(row, needs, options, rule)
        if not broken:
            kept.append(row)
            continue
        label = _label(candidate)
        for name in broken:
            labels = excluded.setdefault(name, [])
            if label not in labels:
                labels.append(label)
    if not kept:
        raise _no_candidate({k: excluded[k] for k in CONSTRAINT_PARAMS if k in excluded}, needs)
    excluded = {k: excluded[k] for k in CONSTRAINT_PARAMS if k in excluded}

    order = _Order(needs=needs, options=options, rng=rng, weights=weights, probe_share=probe_share, rule=rule)
    rows = getattr(order, strategy if strategy in STRATEGIES else "failover_chain")(kept)

    # Explicit preferences beat the strategy; tiers beat both. Python's sort is stable.
    o = options
    if o.provider_order or o.prefer_models or o.preferred_providers or o.prefer_large_context:
        rows.sort(key=lambda r: (
            r.tier,
            _first_match(o.provider_order, lambda n: _provider_matches(r.candidate.provider, n)),
            _first_match(o.prefer_models, lambda n: _model_matches(r.candidate, n)),
            _first_match(o.preferred_providers, lambda n: _provider_matches(r.candidate.provider, n)),
            o.prefer_large_context and r.candidate.model.context_window < LARGE_CONTEXT_TOKENS,
        ))
    elif tiers is not None:
        rows.sort(key=lambda r: r.tier)
    if not o.allow_fallbacks:
        rows = _without_fallbacks(rows, o)
    available = [r for r in rows if r.health is None or r.health.available]
    if len(available) < len(rows):
        rows = available + [r for r in rows if not (r.health is None or r.health.available)]
    return Plan([r.candidate for r in rows], excluded, strategy, order.task,
                order.probed.candidate if order.probed is not None else None)


def _without_fallbacks(rows: list[_Row], options: RouteOptions) -> list[_Row]:
    """provider.allow_fallbacks=false: per tier, only the provider.order providers (or, without an order or
    when none of them serves that tier, only the tier's first candidate)."""
    tiers: dict[int, list[_Row]] = {}
    for row in rows:
        tiers.setdefault(row.tier, []).append(row)
    out = []
    for group in tiers.values():
        ordered = [r for r in group
                   if any(_provider_matches(r.candidate.provider, n) for n in options.provider_order)]
        out += ordered or group[:1]
    return out
