"""The routing strategies: each orders the candidates that passed the constraints (stably, so ties keep the
incoming preference order). `balanced` scores cost, latency and error rate with ROUTING_WEIGHT_* weights;
`performance_first` gives unmeasured candidates a probe share; `task_specific` puts models tagged with the
request's task first; `model_specific` follows the tenant's route table."""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping

from apps.providers.route_options import Needs, RouteOptions

from .route_tables import RouteRule
from .routing_candidates import Row, first_match, provider_matches
from .snapshot import ProviderInfo
from .task_inference import infer_task

DEFAULT_WEIGHTS = {"cost": 0.4, "latency": 0.4, "errors": 0.2}
# Error rates closer together than this are not stretched over the whole 0..1 range in `balanced`: 1% vs 2%
# is noise, not a reason to rank a cheaper, faster deployment last.
ERROR_SPAN_FLOOR = 0.05


def _latency(health, needs: Needs, sort: str | None) -> float | None:
    if health is None:
        return None
    if needs.stream and sort != "throughput" and health.ttft_ms is not None:
        return health.ttft_ms
    return health.latency_ms


def _measured_errors(rows: list[Row]) -> list[float]:
    return [r.health.error_rate for r in rows if r.health is not None and r.health.requests > 0]


def _error_rate(row: Row, fallback: float) -> float:
    h = row.health
    return h.error_rate if h is not None and h.requests > 0 else fallback


def _normalise(values: list[float], floor: float = 0.0) -> list[float]:
    low, high = min(values), max(values)
    span = max(high - low, floor)
    if span <= 0:
        return [0.0] * len(values)
    return [(v - low) / span for v in values]


def _balanced_scores(rows: list[Row], needs: Needs, options: RouteOptions, weights: Mapping) -> list[float]:
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


class StrategyOrder:
    """Strategy orderings. Each takes rows in incoming order and returns them ordered (stable)."""

    def __init__(self, *, needs: Needs, options: RouteOptions, rng: random.Random, weights, probe_share: float,
                 rule: RouteRule | None):
        self.needs, self.options, self.rng = needs, options, rng
        self.weights, self.probe_share, self.rule = weights, probe_share, rule
        self.task: str | None = None
        self.probed: Row | None = None

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
        return sorted(rows, key=lambda r: first_match(chain, lambda n: provider_matches(r.candidate.provider, n)))
