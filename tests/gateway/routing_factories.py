"""Candidates, options and health built directly for the routing engine's tests: no database, no servers.
Prices are given in USD per million tokens, as people quote them."""

from __future__ import annotations

import itertools
from decimal import Decimal

from apps.gateway.resolve import Candidate
from apps.gateway.routing import plan
from apps.gateway.routing_candidates import CandidateHealth
from apps.gateway.snapshot import ModelInfo, ProviderInfo
from apps.providers.route_options import Needs, RouteOptions

M = Decimal(1_000_000)
ALL_CAPS = frozenset({"streaming", "tools", "vision", "json_mode"})
ids = itertools.count(1)


def prov(slug: str, type: str | None = None, *, collects_data: bool = False, weight=None) -> ProviderInfo:
    options = {} if weight is None else {"weight": weight}
    return ProviderInfo(next(ids), slug, None, type or slug, "http://127.0.0.1:9", 0, options, collects_data,
                        [(1, "sk-test")])


def mod(model_id: str, type: str = "openai", *, price_in: float = 1, price_out: float = 2, caps=ALL_CAPS,
        context: int = 128_000, max_out: int = 16_384, tags=(), aliases=(), upstream: str | None = None) -> ModelInfo:
    """Prices in USD per million tokens, as people quote them."""
    return ModelInfo(model_id, type, None, upstream or model_id, tuple(aliases), "chat", context, max_out,
                     Decimal(str(price_in)) / M, Decimal(str(price_out)) / M, None, None, frozenset(caps),
                     tuple(tags), 0)


def cand(provider: ProviderInfo, model_id: str, **kw) -> Candidate:
    return Candidate(provider, mod(model_id, provider.type, **kw))


def opts(strategy: str = "failover_chain", **kw) -> RouteOptions:
    return RouteOptions(model=kw.pop("model", "auto"), strategy=strategy, **kw)


def health(latency=None, *, ttft=None, requests=100, error_rate=0.0, failures=0, circuit="closed",
           rate_limited_until=None, inflight=0) -> CandidateHealth:
    return CandidateHealth(requests=requests, errors=round(requests * error_rate), error_rate=error_rate,
                           consecutive_failures=failures, latency_ms=latency, ttft_ms=ttft, circuit=circuit,
                           rate_limited_until=rate_limited_until, inflight=inflight)


def labels(result) -> list[str]:
    return [f"{c.provider.slug}/{c.model.model_id}" for c in result.ordered]


def run(candidates, *, needs=None, options=None, health_map=None, **kw):
    return plan(candidates, needs=needs or Needs(), options=options or opts(), health=health_map or {}, **kw)


OPENAI, AZURE, ANTHROPIC, GEMINI, OLLAMA = (prov("openai"), prov("azure"), prov("anthropic"), prov("gemini"),
                                            prov("ollama"))
CUSTOM = prov("my-vllm", "openai_compatible")


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
