"""The routing strategies and model_specific route tables through plan(): candidates, health and options built
directly, randomness from a seeded random.Random, so every ordering asserted here is exact."""

from __future__ import annotations

import random

import pytest

from apps.core.errors import ApiError
from apps.core.vocabulary import ROUTING_STRATEGIES
from apps.gateway.routing_candidates import blended_price_per_1k, candidate_key
from apps.providers.route_options import Needs
from tests.gateway.routing_factories import (
    ANTHROPIC,
    AZURE,
    CUSTOM,
    GEMINI,
    OPENAI,
    cand,
    health,
    labels,
    opts,
    prov,
    run,
)


# ---- strategies ------------------------------------------------------------------------------------------
def test_cost_optimized_uses_the_request_blend():
    a = cand(OPENAI, "flat", price_in=10, price_out=10)
    b = cand(ANTHROPIC, "cheap-in", price_in=1, price_out=30)
    c = cand(GEMINI, "middle", price_in=5, price_out=5)
    long_prompt = run([a, b, c], needs=Needs(max_output=100), options=opts("cost_optimized"), prompt_tokens=10_000)
    assert labels(long_prompt) == ["anthropic/cheap-in", "gemini/middle", "openai/flat"]
    long_answer = run([a, b, c], needs=Needs(max_output=10_000), options=opts("cost_optimized"), prompt_tokens=100)
    assert labels(long_answer) == ["gemini/middle", "openai/flat", "anthropic/cheap-in"]
    # No max_tokens: 256 expected output tokens.
    assert blended_price_per_1k(b.model, 1000, 256) == pytest.approx((1 * 1000 + 30 * 256) / 1256 / 1000)


def test_cost_ties_keep_preference_order():
    a, b = cand(AZURE, "gpt-4o", price_in=2.5, price_out=10), cand(OPENAI, "gpt-4o", price_in=2.5, price_out=10)
    assert labels(run([a, b], options=opts("cost_optimized"))) == ["azure/gpt-4o", "openai/gpt-4o"]


def test_performance_first_by_latency_then_unmeasured():
    a, b, c, d = (cand(OPENAI, "a"), cand(AZURE, "b"), cand(ANTHROPIC, "c"), cand(GEMINI, "d"))
    h = {candidate_key(a): health(500), candidate_key(b): health(200), candidate_key(d): health(300)}
    result = run([a, b, c, d], options=opts("performance_first"), health_map=h, probe_share=0)
    assert labels(result) == ["azure/b", "gemini/d", "openai/a", "anthropic/c"]
    assert result.probed is None


def test_performance_first_ranks_streams_by_time_to_first_token():
    a, b = cand(OPENAI, "a"), cand(AZURE, "b")
    h = {candidate_key(a): health(500, ttft=50), candidate_key(b): health(200, ttft=150)}
    stream = Needs(streaming=True, stream=True)
    assert labels(run([a, b], options=opts("performance_first"), health_map=h, probe_share=0)) == \
        ["azure/b", "openai/a"]
    assert labels(run([a, b], needs=stream, options=opts("performance_first"), health_map=h, probe_share=0)) == \
        ["openai/a", "azure/b"]
    # :nitro sorts by throughput: whole-request latency even for streams.
    nitro = opts("performance_first", sort="throughput")
    assert labels(run([a, b], needs=stream, options=nitro, health_map=h, probe_share=0)) == ["azure/b", "openai/a"]


def test_unmeasured_candidates_get_a_probe_share():
    measured = [cand(OPENAI, "a"), cand(AZURE, "b")]
    fresh = [cand(ANTHROPIC, "new-1"), cand(GEMINI, "new-2")]
    h = {candidate_key(measured[0]): health(100), candidate_key(measured[1]): health(300)}
    rng = random.Random(42)
    firsts = [run(measured + fresh, options=opts("performance_first"), health_map=h, rng=rng).ordered[0]
              for _ in range(1000)]
    probes = [c for c in firsts if c.model.model_id.startswith("new")]
    assert 70 <= len(probes) <= 130  # ≈ 10 %
    assert {c.model.model_id for c in probes} == {"new-1", "new-2"}  # the probe rotates among unmeasured ones
    assert all(c.model.model_id == "a" for c in firsts if c not in probes)


def test_performance_first_without_any_measurement_keeps_preference_order():
    cs = [cand(OPENAI, "a"), cand(AZURE, "b")]
    for seed in range(20):
        assert labels(run(cs, options=opts("performance_first"), rng=random.Random(seed))) == ["openai/a", "azure/b"]


def test_balanced_weighs_cost_latency_and_errors():
    a = cand(OPENAI, "cheap-slow", price_in=1, price_out=1)
    b = cand(AZURE, "dear-fast", price_in=3, price_out=3)
    c = cand(ANTHROPIC, "middle", price_in=2, price_out=2)
    h = {candidate_key(a): health(1000), candidate_key(b): health(100), candidate_key(c): health(325)}
    # cost 0 / 1 / 0.5, latency 1 / 0 / 0.25: scores 0.4, 0.4, 0.3
    assert labels(run([a, b, c], options=opts("balanced"), health_map=h)) == \
        ["anthropic/middle", "openai/cheap-slow", "azure/dear-fast"]
    assert labels(run([a, b, c], options=opts("balanced"), health_map=h,
                      weights={"cost": 1, "latency": 0, "errors": 0}))[0] == "openai/cheap-slow"
    assert labels(run([a, b, c], options=opts("balanced"), health_map=h,
                      weights={"cost": 0, "latency": 1, "errors": 0}))[0] == "azure/dear-fast"
    h[candidate_key(c)] = health(325, error_rate=0.5)
    assert labels(run([a, b, c], options=opts("balanced"), health_map=h))[-1] == "anthropic/middle"


def test_balanced_unmeasured_latency_counts_as_the_median():
    a, b, d = cand(OPENAI, "fast"), cand(AZURE, "slow"), cand(ANTHROPIC, "unmeasured")
    h = {candidate_key(a): health(100), candidate_key(b): health(300)}
    assert labels(run([b, d, a], options=opts("balanced"), health_map=h)) == \
        ["openai/fast", "anthropic/unmeasured", "azure/slow"]


def test_reliability_first():
    a, b, c, d = cand(OPENAI, "flaky"), cand(AZURE, "failing-now"), cand(ANTHROPIC, "solid"), cand(GEMINI, "new")
    h = {candidate_key(a): health(100, error_rate=0.1), candidate_key(b): health(100, failures=2),
         candidate_key(c): health(900)}
    assert labels(run([a, b, c, d], options=opts("reliability_first"), health_map=h)) == \
        ["anthropic/solid", "gemini/new", "azure/failing-now", "openai/flaky"]


def test_task_specific_tagged_first_then_balanced():
    general = cand(OPENAI, "general", price_in=0.1, price_out=0.1, tags=("general",))
    dear = cand(ANTHROPIC, "coder-dear", price_in=10, price_out=10, tags=("coding",))
    cheap = cand(GEMINI, "coder-cheap", price_in=1, price_out=1, tags=("coding", "analysis"))
    result = run([general, dear, cheap], options=opts("task_specific", task_type="coding"))
    assert labels(result) == ["gemini/coder-cheap", "anthropic/coder-dear", "openai/general"]
    assert result.task == "coding"
    messages = [{"role": "user", "content": "Compare these two datasets and analyse the trend"}]
    inferred = run([general, dear, cheap], needs=Needs(messages=messages), options=opts("task_specific"))
    assert inferred.task == "analysis" and labels(inferred)[0] == "gemini/coder-cheap"
    poem = run([general, dear, cheap], needs=Needs(messages=[{"role": "user", "content": "write a poem"}]),
               options=opts("task_specific"))
    assert poem.task == "creative" and labels(poem)[0] == "openai/general"  # none tagged: cheapest


def test_load_balanced_follows_weights_and_in_flight():
    heavy, light = cand(prov("east", "openai", weight=3), "gpt-4o"), cand(prov("west", "openai", weight=1), "gpt-4o")
    rng = random.Random(7)
    firsts = [run([heavy, light], options=opts("load_balanced"), rng=rng).ordered[0] for _ in range(4000)]
    share = sum(c is heavy for c in firsts) / len(firsts)
    assert share == pytest.approx(0.75, abs=0.03)
    a, b = cand(prov("a", "openai"), "gpt-4o"), cand(prov("b", "openai"), "gpt-4o")
    busy = {candidate_key(a): health(100, inflight=3)}  # share 1/4 against 1
    firsts = [run([a, b], options=opts("load_balanced"), health_map=busy, rng=rng).ordered[0] for _ in range(4000)]
    assert sum(c is a for c in firsts) / len(firsts) == pytest.approx(0.2, abs=0.03)
    drained = cand(prov("drained", "openai", weight=0), "gpt-4o")
    assert all(run([drained, b], options=opts("load_balanced"), rng=rng).ordered[0] is b for _ in range(200))


def test_failover_chain_keeps_order_and_tiers_win_over_strategies():
    a = cand(OPENAI, "primary", price_in=30, price_out=60)
    b = cand(AZURE, "primary", price_in=20, price_out=40)
    fallback = cand(ANTHROPIC, "fallback", price_in=0.1, price_out=0.1)
    h = {candidate_key(a): health(5000), candidate_key(b): health(100)}
    assert labels(run([a, b, fallback], options=opts("failover_chain"), health_map=h)) == \
        ["openai/primary", "azure/primary", "anthropic/fallback"]
    for strategy in ROUTING_STRATEGIES:
        result = run([a, b, fallback], options=opts(strategy), health_map=h, tiers=[0, 0, 1])
        assert labels(result)[-1] == "anthropic/fallback", strategy
    assert labels(run([a, b, fallback], options=opts("cost_optimized"), tiers=[0, 0, 1])) == \
        ["azure/primary", "openai/primary", "anthropic/fallback"]


# ---- model_specific route tables -------------------------------------------------------------------------
def test_model_specific_route_table():
    openai = cand(OPENAI, "gpt-4", price_in=30, price_out=60)
    azure = cand(AZURE, "gpt-4", price_in=20, price_out=40)
    custom = cand(CUSTOM, "gpt-4", price_in=1, price_out=1)
    routes = {"gpt-4": {"primary": "azure", "fallback": ["openai"]}}
    o = opts("model_specific", model="gpt-4")
    result = run([openai, azure, custom], options=o, tenant_routes=routes)
    assert labels(result) == ["azure/gpt-4", "openai/gpt-4"]
    assert result.excluded == {"route_table": ["my-vllm/gpt-4"]}
    # cost_limit: openai's blend for 1000 prompt + 256 output tokens is $0.036/1k, azure's $0.024/1k.
    routes["gpt-4"]["cost_limit"] = "$0.03/1k_tokens"
    result = run([openai, azure, custom], options=o, tenant_routes=routes, prompt_tokens=1000)
    assert labels(result) == ["azure/gpt-4"]
    assert result.excluded == {"route_table": ["my-vllm/gpt-4"], "cost_limit": ["openai/gpt-4"]}
    routes["gpt-4"].update(cost_limit=None, performance_target="2s")
    slow = {candidate_key(azure): health(2500)}
    assert labels(run([openai, azure], options=o, tenant_routes=routes, health_map=slow)) == ["openai/gpt-4"]
    # The slug works as well as the type; models without a route keep their order.
    assert labels(run([openai, custom], options=o, tenant_routes={"gpt-4": {"primary": "my-vllm"}})) == \
        ["my-vllm/gpt-4"]
    assert labels(run([openai, azure], options=opts("model_specific", model="gpt-4o"), tenant_routes=routes)) == \
        ["openai/gpt-4", "azure/gpt-4"]


def test_invalid_route_table_entry_is_a_server_error():
    with pytest.raises(ApiError) as info:
        run([cand(OPENAI, "gpt-4")], options=opts("model_specific", model="gpt-4"),
            tenant_routes={"gpt-4": {"primary": "openai", "cost_limit": "cheap"}})
    assert (info.value.status, info.value.code) == (500, "invalid_route_table")
