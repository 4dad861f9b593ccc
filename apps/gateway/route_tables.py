"""Tenants' model_specific route tables: per model a primary provider, fallbacks, a cost limit and a latency
target, validated once where the table is saved or loaded (`parse_route_table`) rather than per request."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


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
