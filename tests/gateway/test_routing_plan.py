"""plan() as a whole, as a property: for random candidates, health, needs and options, the plan is a
permutation of exactly the candidates that meet every rule, stated independently here."""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.errors import ApiError
from apps.core.vocabulary import ROUTING_STRATEGIES
from apps.gateway.routing import plan
from apps.gateway.routing_candidates import candidate_key
from apps.providers.route_options import TASK_TYPES, Needs, RouteOptions
from tests.gateway.routing_factories import (
    ANTHROPIC,
    AZURE,
    CUSTOM,
    OLLAMA,
    OPENAI,
    cand,
    health,
    prov,
)

# ---- property --------------------------------------------------------------------------------------------
PROVIDERS = [OPENAI, AZURE, ANTHROPIC, prov("gemini-logged", "gemini", collects_data=True), OLLAMA, CUSTOM]
PROVIDER_NAMES = ["openai", "azure", "anthropic", "gemini", "gemini-logged", "ollama", "my-vllm", "google"]
CAPS = ["streaming", "tools", "vision", "json_mode"]


def _matches(provider, name):
    name = name.lower()
    aliases = {"google": "gemini", "custom": "openai_compatible"}
    return name in (provider.slug, provider.type) or aliases.get(name) == provider.type


def violations(c, *, needs, options, health_map, prompt_tokens, routes) -> set[str]:
    """An independent statement of every exclusion rule."""
    m, p, h = c.model, c.provider, health_map.get(candidate_key(c))
    out = set()
    for flag, cap in ((needs.tools, "tools"), (needs.vision, "vision"), (needs.json_mode, "json_mode"),
                      (needs.streaming, "streaming")):
        if flag and cap not in m.capabilities:
            out.add(cap)
    max_out = needs.max_output or 0
    if (m.context_window and prompt_tokens + max_out > m.context_window) or (
            m.max_output_tokens and max_out > m.max_output_tokens):
        out.add("context_length")
    expected = needs.max_output or 256
    price = (float(m.input_price) * prompt_tokens + float(m.output_price) * expected) / (prompt_tokens + expected)
    price *= 1000
    if options.max_cost_per_1k_tokens is not None and price > options.max_cost_per_1k_tokens * (1 + 1e-9):
        out.add("max_cost")
    latency = h.latency_ms if h else None
    if options.max_latency_ms is not None and latency is not None and latency > options.max_latency_ms:
        out.add("max_latency")
    if options.only and not any(_matches(p, n) for n in options.only):
        out.add("only")
    if any(_matches(p, n) for n in options.ignore):
        out.add("ignore")
    if options.max_price_prompt is not None and float(m.input_price) * 1e6 > options.max_price_prompt * 1.000001:
        out.add("max_price")
    if options.data_collection == "deny" and p.collects_data:
        out.add("data_collection")
    route = routes.get(options.model) if options.strategy == "model_specific" else None
    if route is not None:
        if not any(_matches(p, n) for n in [route["primary"], *route["fallback"]]):
            out.add("route_table")
        if price > route["cost_limit"] * (1 + 1e-9):
            out.add("cost_limit")
    return out


def often(*values):
    """None three times out of four, else one of `values` (most draws should leave candidates to order)."""
    return st.sampled_from([None, None, None, None, None, None, *values])


def rarely_true():
    return st.sampled_from([False, False, False, True])


@st.composite
def scenarios(draw):
    candidates = []
    for i in range(draw(st.integers(1, 8))):
        provider = draw(st.sampled_from(PROVIDERS))
        caps = frozenset(cap for cap in CAPS if draw(st.sampled_from([True, True, True, False])))
        candidates.append(cand(
            provider, draw(st.sampled_from(["gpt-4o", "claude", "llama", f"m{i}"])),
            price_in=draw(st.sampled_from([0, 0.1, 1, 5, 30])), price_out=draw(st.sampled_from([0, 0.4, 4, 15, 60])),
            caps=caps, context=draw(st.sampled_from([0, 8192, 128_000, 128_000])),
            max_out=draw(st.sampled_from([0, 4096, 16_384, 16_384])),
            tags=tuple(draw(st.lists(st.sampled_from(TASK_TYPES), max_size=2)))))
    health_map = {}
    for c in candidates:
        if draw(st.booleans()):
            health_map[candidate_key(c)] = health(
                draw(st.none() | st.sampled_from([50.0, 300.0, 2000.0])),
                ttft=draw(st.none() | st.sampled_from([20.0, 400.0])),
                requests=draw(st.sampled_from([0, 10, 1000])), error_rate=draw(st.sampled_from([0.0, 0.05, 0.5])),
                failures=draw(st.integers(0, 5)), circuit=draw(st.sampled_from(["closed", "open", "half_open"])),
                rate_limited_until=draw(often(time.time() + 60, time.time() - 60)), inflight=draw(st.integers(0, 4)))
    strategy = draw(st.sampled_from(ROUTING_STRATEGIES))
    names = st.sampled_from([(), (), (), ("openai",), ("gemini", "my-vllm"), ("google", "anthropic"), ("azure",),
                             ("ollama", "custom")])
    options = RouteOptions(
        model="auto", strategy=strategy, sort=draw(often("price", "latency", "throughput")),
        task_type=draw(often(*TASK_TYPES)),
        max_cost_per_1k_tokens=draw(often(0.0, 0.001, 0.01, 0.1)), max_latency_ms=draw(often(100.0, 1000.0)),
        prefer_models=draw(st.lists(st.sampled_from(["gpt-4o", "claude", "openai/llama"]), max_size=2).map(tuple)),
        preferred_providers=draw(names), prefer_large_context=draw(st.booleans()), provider_order=draw(names),
        allow_fallbacks=not draw(rarely_true()), only=draw(names), ignore=draw(names),
        max_price_prompt=draw(often(0.5, 10.0)),
        data_collection=draw(st.sampled_from(["allow", "allow", "allow", "deny"])))
    needs = Needs(tools=draw(rarely_true()), vision=draw(rarely_true()), json_mode=draw(rarely_true()),
                  streaming=draw(rarely_true()), stream=draw(st.booleans()),
                  max_output=draw(often(100, 5000, 20_000)),
                  messages=[{"role": "user", "content": draw(st.sampled_from(["fix my python", "a poem", "hi"]))}])
    routes = {}
    if draw(rarely_true()):
        routes["auto"] = {"primary": draw(st.sampled_from(PROVIDER_NAMES)),
                          "fallback": draw(st.lists(st.sampled_from(PROVIDER_NAMES), max_size=2)),
                          "cost_limit": draw(st.sampled_from([0.001, 1.0]))}
    tiers = draw(st.none() | st.lists(st.integers(0, 2), min_size=len(candidates), max_size=len(candidates)))
    prompt_tokens = draw(st.sampled_from([0, 100, 5000, 5000, 200_000]))
    return candidates, health_map, options, needs, prompt_tokens, routes, tiers


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**32 - 1))
def test_plan_is_a_permutation_of_the_candidates_that_meet_every_rule(scenario, seed):
    candidates, health_map, options, needs, prompt_tokens, routes, tiers = scenario
    broken = {id(c): violations(c, needs=needs, options=options, health_map=health_map, prompt_tokens=prompt_tokens,
                                routes=routes) for c in candidates}
    eligible = [c for c in candidates if not broken[id(c)]]
    try:
        result = plan(candidates, needs=needs, options=options, health=health_map, tenant_routes=routes,
                      rng=random.Random(seed), prompt_tokens=prompt_tokens, tiers=tiers)
    except ApiError as error:
        assert error.code == "no_candidate_meets_constraints"
        assert not eligible
        return
    assert eligible
    ordered_ids = [id(c) for c in result.ordered]
    assert len(ordered_ids) == len(set(ordered_ids))  # no candidate twice
    assert set(ordered_ids) <= {id(c) for c in candidates}
    assert all(not broken[i] for i in ordered_ids)
    tier_of = {id(c): (tiers[i] if tiers else 0) for i, c in enumerate(candidates)}
    if options.allow_fallbacks:
        assert set(ordered_ids) == {id(c) for c in eligible}
    elif not options.provider_order:  # no provider fallbacks: one candidate per model (tier)
        per_tier = [tier_of[i] for i in ordered_ids]
        assert len(per_tier) == len(set(per_tier))
    # Unavailable deployments come last; among the available ones, tiers never interleave.
    up = [(h := health_map.get(candidate_key(c))) is None or h.available for c in result.ordered]
    assert up == sorted(up, reverse=True)
    available_tiers = [tier_of[id(c)] for c, is_up in zip(result.ordered, up, strict=True) if is_up]
    assert available_tiers == sorted(available_tiers)
    excluded_labels = {label for values in result.excluded.values() for label in values}
    for c in candidates:
        if broken[id(c)]:
            assert f"{c.provider.slug}/{c.model.model_id}" in excluded_labels
