"""What excludes a candidate from a plan (capabilities, context length, cost, latency, provider rules), the
preferences and health ordering applied after the strategy, and the 400 that names every constraint."""

from __future__ import annotations

import time

import pytest

from apps.core.errors import ApiError
from apps.gateway.prompt_tokens import PromptTokenCounter
from apps.gateway.routing_candidates import candidate_key
from apps.providers.route_options import Needs, parse_route_options, request_needs
from tests.gateway.routing_factories import (
    ALL_CAPS,
    ANTHROPIC,
    AZURE,
    CUSTOM,
    GEMINI,
    OLLAMA,
    OPENAI,
    cand,
    health,
    labels,
    opts,
    prov,
    run,
)


# ---- constraints -----------------------------------------------------------------------------------------
def _no_candidate(candidates, **kw) -> ApiError:
    with pytest.raises(ApiError) as info:
        run(candidates, **kw)
    error = info.value
    assert (error.status, error.type, error.code) == (400, "invalid_request_error", "no_candidate_meets_constraints")
    return error


def test_max_cost_per_1k_tokens():
    cheap = cand(OPENAI, "gpt-4o-mini", price_in=0.15, price_out=0.6)
    dear = cand(OPENAI, "gpt-4o", price_in=2.5, price_out=10)
    opus = cand(ANTHROPIC, "claude-3-opus-20240229", price_in=15, price_out=75)
    body = {"model": "auto", "circuit_breaker": {"max_cost_per_1k_tokens": 0.001}}
    o = parse_route_options(body, default_strategy="balanced")
    result = run([dear, cheap, opus], options=o, prompt_tokens=1000)
    assert labels(result) == ["openai/gpt-4o-mini"]
    assert result.excluded == {"max_cost_per_1k_tokens": ["openai/gpt-4o", "anthropic/claude-3-opus-20240229"]}
    error = _no_candidate([dear, opus], options=o, prompt_tokens=1000)
    assert error.param == "circuit_breaker.max_cost_per_1k_tokens"
    assert error.message == ("No model meets the request's constraints: max_cost_per_1k_tokens excluded "
                             "openai/gpt-4o, anthropic/claude-3-opus-20240229.")


def test_max_latency_ms_excludes_measured_only():
    slow, fast, new = cand(OPENAI, "slow"), cand(AZURE, "fast"), cand(ANTHROPIC, "new")
    h = {candidate_key(slow): health(900), candidate_key(fast): health(200)}
    o = opts(max_latency_ms=500)
    result = run([slow, fast, new], options=o, health_map=h)
    assert labels(result) == ["azure/fast", "anthropic/new"]
    assert result.excluded == {"max_latency_ms": ["openai/slow"]}
    assert _no_candidate([slow], options=o, health_map=h).param == "circuit_breaker.max_latency_ms"


def test_provider_only_and_ignore_by_type_or_slug():
    cs = [cand(OPENAI, "gpt-4o"), cand(AZURE, "gpt-4o"), cand(CUSTOM, "gpt-4o"), cand(GEMINI, "gemini-2.5-pro")]
    only = parse_route_options({"model": "x", "provider": {"only": ["OpenAI", "my-vllm", "google"]}},
                               default_strategy="failover_chain")
    result = run(cs, options=only)
    assert labels(result) == ["openai/gpt-4o", "my-vllm/gpt-4o", "gemini/gemini-2.5-pro"]
    assert result.excluded == {"provider.only": ["azure/gpt-4o"]}
    ignore = opts(ignore=("azure", "openai_compatible"))
    result = run(cs, options=ignore)
    assert labels(result) == ["openai/gpt-4o", "gemini/gemini-2.5-pro"]
    assert result.excluded == {"provider.ignore": ["azure/gpt-4o", "my-vllm/gpt-4o"]}
    error = _no_candidate(cs[:2], options=opts(only=("anthropic",)))
    assert error.param == "provider.only" and "provider.only excluded openai/gpt-4o, azure/gpt-4o" in error.message


def test_provider_max_price_is_per_million_tokens():
    gpt4o = cand(OPENAI, "gpt-4o", price_in=2.5, price_out=10)
    mini = cand(OPENAI, "gpt-4o-mini", price_in=0.15, price_out=0.6)
    assert labels(run([gpt4o, mini], options=opts(max_price_prompt=2.5, max_price_completion=10))) == \
        ["openai/gpt-4o", "openai/gpt-4o-mini"]
    result = run([gpt4o, mini], options=opts(max_price_prompt=3, max_price_completion=5))
    assert labels(result) == ["openai/gpt-4o-mini"] and result.excluded == {"provider.max_price": ["openai/gpt-4o"]}
    assert labels(run([gpt4o, mini], options=opts(max_price_prompt=1))) == ["openai/gpt-4o-mini"]


def test_data_collection_deny():
    keeps = cand(prov("logger", "openai_compatible", collects_data=True), "llama")
    private = cand(OLLAMA, "llama")
    result = run([keeps, private], options=opts(data_collection="deny"))
    assert labels(result) == ["ollama/llama"] and result.excluded == {"provider.data_collection": ["logger/llama"]}
    assert labels(run([keeps, private], options=opts(data_collection="allow"))) == ["logger/llama", "ollama/llama"]


def test_require_parameters_never_relaxes_the_capability_filter():
    no_tools = cand(OLLAMA, "llama3", caps={"streaming"})
    tools = cand(OPENAI, "gpt-4o")
    for require in (True, False):
        result = run([no_tools, tools], needs=Needs(tools=True), options=opts(require_parameters=require))
        assert labels(result) == ["openai/gpt-4o"] and result.excluded == {"tools": ["ollama/llama3"]}


def test_preferences_reorder_without_excluding():
    a = cand(OPENAI, "gpt-4o", price_in=2.5, price_out=10, aliases=("4o",))
    b = cand(ANTHROPIC, "claude-sonnet-4-5", price_in=3, price_out=15)
    c = cand(GEMINI, "gemini-2.5-flash", price_in=0.3, price_out=2.5)
    cheap = opts("cost_optimized")
    assert labels(run([a, b, c], options=cheap)) == \
        ["gemini/gemini-2.5-flash", "openai/gpt-4o", "anthropic/claude-sonnet-4-5"]
    prefer = opts("cost_optimized", preferred_providers=("anthropic",))
    assert labels(run([a, b, c], options=prefer))[0] == "anthropic/claude-sonnet-4-5"
    for name in ("gpt-4o", "4o", "openai/gpt-4o"):
        assert labels(run([a, b, c], options=opts("cost_optimized", prefer_models=(name,))))[0] == "openai/gpt-4o"
    order = opts("cost_optimized", provider_order=("Anthropic", "openai"))
    result = run([a, b, c], options=order)
    assert labels(result) == ["anthropic/claude-sonnet-4-5", "openai/gpt-4o", "gemini/gemini-2.5-flash"]
    assert result.excluded == {}


def test_allow_fallbacks_false():
    a, b, c = cand(OPENAI, "gpt-4o"), cand(AZURE, "gpt-4o"), cand(CUSTOM, "gpt-4o")
    assert labels(run([a, b, c], options=opts(allow_fallbacks=False))) == ["openai/gpt-4o"]
    ordered = opts(allow_fallbacks=False, provider_order=("my-vllm", "azure"))
    assert labels(run([a, b, c], options=ordered)) == ["my-vllm/gpt-4o", "azure/gpt-4o"]
    # Model fallbacks (OpenRouter `models`) still apply: one provider per model.
    d = cand(ANTHROPIC, "claude")
    assert labels(run([a, b, d], options=opts(allow_fallbacks=False), tiers=[0, 0, 1])) == \
        ["openai/gpt-4o", "anthropic/claude"]


def test_prefer_large_context():
    small = cand(OPENAI, "gpt-4", context=8192, price_in=1, price_out=1)
    large = cand(GEMINI, "gemini-1.5-pro", context=2_097_152, price_in=5, price_out=5)
    assert labels(run([small, large], options=opts("cost_optimized")))[0] == "openai/gpt-4"
    assert labels(run([small, large], options=opts("cost_optimized", prefer_large_context=True)))[0] == \
        "gemini/gemini-1.5-pro"


def test_floor_and_nitro_suffixes_route_by_price_and_speed():
    dear_fast = cand(OPENAI, "gpt-4o", price_in=2.5, price_out=10)
    cheap_slow = cand(AZURE, "gpt-4o", price_in=2, price_out=8)
    h = {candidate_key(dear_fast): health(150), candidate_key(cheap_slow): health(900)}
    floor = parse_route_options({"model": "gpt-4o:floor"}, default_strategy="failover_chain")
    assert labels(run([dear_fast, cheap_slow], options=floor, health_map=h))[0] == "azure/gpt-4o"
    nitro = parse_route_options({"model": "gpt-4o:nitro"}, default_strategy="failover_chain")
    assert labels(run([cheap_slow, dear_fast], options=nitro, health_map=h, probe_share=0))[0] == "openai/gpt-4o"
    by_latency = parse_route_options({"model": "gpt-4o", "provider": {"sort": "latency"}},
                                     default_strategy="cost_optimized")
    assert labels(run([cheap_slow, dear_fast], options=by_latency, health_map=h))[0] == "openai/gpt-4o"


def test_unavailable_candidates_move_to_the_end():
    a, b, c = cand(OPENAI, "a"), cand(AZURE, "b"), cand(ANTHROPIC, "c")
    h = {candidate_key(a): health(100, circuit="open"),
         candidate_key(b): health(100, rate_limited_until=time.time() + 30),
         candidate_key(c): health(100, circuit="half_open")}
    result = run([a, b, c], options=opts(), health_map=h)
    assert labels(result) == ["anthropic/c", "openai/a", "azure/b"] and result.excluded == {}
    h[candidate_key(b)] = health(100, rate_limited_until=time.time() - 1)  # the limit has passed
    assert labels(run([a, b, c], options=opts(), health_map=h)) == ["azure/b", "anthropic/c", "openai/a"]
    h = {candidate_key(x): health(100, circuit="open") for x in (a, b, c)}
    assert labels(run([a, b, c], options=opts(), health_map=h)) == ["openai/a", "azure/b", "anthropic/c"]


def test_no_candidate_names_every_constraint():
    no_tools = cand(OLLAMA, "llama3", caps={"streaming"}, price_in=0, price_out=0)
    dear = cand(OPENAI, "gpt-4", price_in=30, price_out=60)
    both = cand(ANTHROPIC, "claude-3-opus-20240229", caps={"vision"}, price_in=15, price_out=75)
    error = _no_candidate([no_tools, dear, both], needs=Needs(tools=True),
                          options=opts(max_cost_per_1k_tokens=0.01))
    assert error.param == "tools"
    assert error.message == ("No model meets the request's constraints: tools excluded ollama/llama3, "
                             "anthropic/claude-3-opus-20240229; max_cost_per_1k_tokens excluded openai/gpt-4, "
                             "anthropic/claude-3-opus-20240229.")
    many = [cand(OLLAMA, f"m{i}", caps={"streaming"}) for i in range(14)]
    assert "and 4 more" in _no_candidate(many, needs=Needs(tools=True)).message


# ---- capabilities ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("needs", "capability", "param"), [
    (Needs(tools=True), "tools", "tools"),
    (Needs(vision=True), "vision", "messages"),
    (Needs(json_mode=True), "json_mode", "response_format"),
    (Needs(streaming=True, stream=True), "streaming", "stream"),
    (Needs(streaming=True), "streaming", "circuit_breaker.require_streaming"),
])
def test_capability_filter(needs, capability, param):
    lacking = cand(ANTHROPIC, "lacking", caps=ALL_CAPS - {capability})
    having = cand(OPENAI, "having")
    result = run([lacking, having], needs=needs)
    assert labels(result) == ["openai/having"] and result.excluded == {capability: ["anthropic/lacking"]}
    error = _no_candidate([lacking], needs=needs)
    assert error.param == param and f"{capability} excluded anthropic/lacking" in error.message


def test_context_length_with_a_long_prompt():
    body = {"model": "auto", "messages": [{"role": "user", "content": "token " * 10_000}], "max_tokens": 1000}
    short = cand(OPENAI, "gpt-4", context=8192, max_out=8192)
    roomy = cand(OPENAI, "gpt-4o", context=128_000)
    unknown = cand(CUSTOM, "mystery", context=0, max_out=0)
    counter = PromptTokenCounter(body)
    assert counter(short.model) > 8192
    result = run([short, roomy, unknown], needs=request_needs(body), prompt_tokens=counter)
    assert labels(result) == ["openai/gpt-4o", "my-vllm/mystery"]
    assert result.excluded == {"context_length": ["openai/gpt-4"]}
    # A window that fits the prompt but not prompt + max_tokens is excluded too, as is max_tokens above the cap.
    fits = cand(OPENAI, "gpt-4-32k", context=counter(short.model) + 500)
    capped = cand(OPENAI, "gpt-4o-small-out", max_out=512)
    result = run([fits, capped, roomy], needs=request_needs(body), prompt_tokens=counter)
    assert labels(result) == ["openai/gpt-4o"]
    assert result.excluded == {"context_length": ["openai/gpt-4-32k", "openai/gpt-4o-small-out"]}
    assert _no_candidate([short], needs=request_needs(body), prompt_tokens=counter).param == "messages"


def test_empty_candidate_list():
    assert _no_candidate([]).param == "model"
