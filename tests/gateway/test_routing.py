"""The routing engine as pure functions: options parsing, request needs, token estimates, and plan().

No database, no servers: candidates, health and options are built directly, randomness comes from a seeded
random.Random, so every ordering asserted here is exact.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.errors import ApiError
from apps.core.vocabulary import ROUTING_STRATEGIES
from apps.gateway import prompt_tokens as tokens
from apps.gateway.prompt_tokens import PromptTokenCounter, count_request, count_text, estimate_prompt_tokens
from apps.gateway.resolve import Candidate
from apps.gateway.routing import (
    CandidateHealth,
    blended_price_per_1k,
    candidate_key,
    infer_task,
    parse_cost_limit,
    parse_duration_ms,
    parse_route_table,
    plan,
)
from apps.gateway.snapshot import ModelInfo, ProviderInfo
from apps.providers.route_options import TASK_TYPES, Needs, RouteOptions, parse_route_options, request_needs

M = Decimal(1_000_000)
ALL_CAPS = frozenset({"streaming", "tools", "vision", "json_mode"})
_ids = itertools.count(1)


def prov(slug: str, type: str | None = None, *, collects_data: bool = False, weight=None) -> ProviderInfo:
    options = {} if weight is None else {"weight": weight}
    return ProviderInfo(next(_ids), slug, None, type or slug, "http://127.0.0.1:9", 0, options, collects_data,
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


# ---- options ---------------------------------------------------------------------------------------------
def test_options_default_strategy_and_carried_fields():
    body = {"model": "gpt-4o", "circuit_breaker": {
        "max_cost_per_1k_tokens": 0.01, "max_latency_ms": 1500, "fallback_models": ["gpt-4o-mini"],
        "task_type": "coding", "require_streaming": True, "prefer_models": ["gpt-4o"],
        "preferred_providers": ["azure"], "prefer_large_context": True,
        "budget_tracking": {"user_id": "u1", "project_id": "p1"}},
        "models": ["claude-3-5-sonnet:floor", "gemini-2.5-pro"], "route": "fallback",
        "provider": {"order": ["Azure", "openai"], "allow_fallbacks": False, "only": ["openai", "azure"],
                     "ignore": ["ollama"], "max_price": {"prompt": 5, "completion": 15},
                     "require_parameters": True, "data_collection": "deny"}}
    o = parse_route_options(body, default_strategy="balanced")
    assert (o.model, o.strategy, o.strategy_source, o.sort) == ("gpt-4o", "balanced", "default", None)
    assert o.max_cost_per_1k_tokens == 0.01 and o.max_latency_ms == 1500
    assert o.fallback_models == ("gpt-4o-mini",) and o.task_type == "coding" and o.require_streaming
    assert o.prefer_models == ("gpt-4o",) and o.preferred_providers == ("azure",) and o.prefer_large_context
    assert (o.budget_user_id, o.budget_project_id) == ("u1", "p1")
    assert o.models == ("claude-3-5-sonnet", "gemini-2.5-pro") and o.route == "fallback"
    assert o.provider_order == ("Azure", "openai") and o.allow_fallbacks is False
    assert o.only == ("openai", "azure") and o.ignore == ("ollama",)
    assert (o.max_price_prompt, o.max_price_completion) == (5, 15)
    assert o.require_parameters and o.data_collection == "deny"
    assert o.model_chain() == ["gpt-4o", "claude-3-5-sonnet", "gemini-2.5-pro", "gpt-4o-mini"]


def test_options_without_any_routing_fields():
    o = parse_route_options({"model": "gpt-4o", "messages": []}, default_strategy="failover_chain")
    assert o.strategy == "failover_chain" and o.allow_fallbacks and o.data_collection == "allow"
    assert o.model_chain() == ["gpt-4o"]


@pytest.mark.parametrize(("model", "strategy", "task"), [
    ("auto", "balanced", None), ("cb:smart-chat", "balanced", None), ("cb:cost-optimal", "cost_optimized", None),
    ("cb:fastest", "performance_first", None), ("cb:reliable", "reliability_first", None),
    ("cb:coding", "task_specific", "coding"), ("cb:analysis", "task_specific", "analysis"),
    ("cb:creative", "task_specific", "creative"),
])
def test_virtual_models_imply_their_strategy(model, strategy, task):
    o = parse_route_options({"model": model}, default_strategy="failover_chain")
    assert (o.strategy, o.strategy_source, o.task_type) == (strategy, "virtual_model", task)


def test_request_strategy_and_task_beat_the_virtual_model():
    o = parse_route_options({"model": "cb:coding", "circuit_breaker": {"routing_strategy": "cost_optimized",
                                                                       "task_type": "analysis"}},
                            default_strategy="balanced")
    assert (o.strategy, o.strategy_source, o.task_type) == ("cost_optimized", "request", "analysis")


def test_tenant_virtual_models():
    o = parse_route_options({"model": "team-cheap"}, default_strategy="balanced",
                            virtual_models={"team-cheap": "cost_optimized"})
    assert (o.strategy, o.strategy_source) == ("cost_optimized", "virtual_model")


@pytest.mark.parametrize(("body", "strategy", "sort", "source"), [
    ({"model": "gpt-4o:floor"}, "cost_optimized", "price", "suffix"),
    ({"model": "gpt-4o:nitro"}, "performance_first", "throughput", "suffix"),
    ({"model": "auto:nitro"}, "performance_first", "throughput", "suffix"),
    ({"model": "gpt-4o", "provider": {"sort": "price"}}, "cost_optimized", "price", "provider.sort"),
    ({"model": "gpt-4o", "provider": {"sort": "latency"}}, "performance_first", "latency", "provider.sort"),
    ({"model": "gpt-4o", "provider": {"sort": "throughput"}}, "performance_first", "throughput", "provider.sort"),
    ({"model": "gpt-4o:floor", "circuit_breaker": {"routing_strategy": "reliability_first"}},
     "reliability_first", "price", "request"),
])
def test_suffixes_and_provider_sort(body, strategy, sort, source):
    o = parse_route_options(body, default_strategy="balanced")
    assert (o.strategy, o.sort, o.strategy_source) == (strategy, sort, source)
    assert not o.model.endswith((":floor", ":nitro"))


def _parse_error(body) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_route_options(body, default_strategy="balanced")
    error = info.value
    assert (error.status, error.type, error.code) == (400, "invalid_request_error", "invalid_routing_option")
    return error


def test_unknown_strategy_names_the_valid_ones():
    error = _parse_error({"model": "auto", "circuit_breaker": {"routing_strategy": "fastest"}})
    assert error.param == "circuit_breaker.routing_strategy"
    assert "'fastest'" in error.message
    for strategy in ROUTING_STRATEGIES:
        assert strategy in error.message


@pytest.mark.parametrize(("body", "param"), [
    ({"circuit_breaker": {"max_cost": 1}}, "circuit_breaker.max_cost"),
    ({"circuit_breaker": {"budget_tracking": {"team": "x"}}}, "circuit_breaker.budget_tracking.team"),
    ({"provider": {"quantizations": ["fp8"]}}, "provider.quantizations"),
    ({"provider": {"max_price": {"request": 1}}}, "provider.max_price.request"),
])
def test_unknown_options_are_rejected(body, param):
    error = _parse_error({"model": "auto", **body})
    assert error.param == param
    assert "Unknown option" in error.message and param in error.message
    assert "Valid options" in error.message


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"circuit_breaker": "cheap"}, "circuit_breaker", "object"),
    ({"circuit_breaker": {"max_cost_per_1k_tokens": "0.01"}}, "circuit_breaker.max_cost_per_1k_tokens", "number"),
    ({"circuit_breaker": {"max_cost_per_1k_tokens": -1}}, "circuit_breaker.max_cost_per_1k_tokens", "0 or more"),
    ({"circuit_breaker": {"max_cost_per_1k_tokens": True}}, "circuit_breaker.max_cost_per_1k_tokens", "number"),
    ({"circuit_breaker": {"max_latency_ms": 0}}, "circuit_breaker.max_latency_ms", "greater than 0"),
    ({"circuit_breaker": {"max_latency_ms": -5}}, "circuit_breaker.max_latency_ms", "greater than 0"),
    ({"circuit_breaker": {"fallback_models": "gpt-4o"}}, "circuit_breaker.fallback_models", "array"),
    ({"circuit_breaker": {"fallback_models": ["gpt-4o", 3]}}, "circuit_breaker.fallback_models", "array"),
    ({"circuit_breaker": {"task_type": "poetry"}}, "circuit_breaker.task_type", "coding, analysis"),
    ({"circuit_breaker": {"require_streaming": "yes"}}, "circuit_breaker.require_streaming", "boolean"),
    ({"circuit_breaker": {"prefer_large_context": 1}}, "circuit_breaker.prefer_large_context", "boolean"),
    ({"circuit_breaker": {"preferred_providers": [""]}}, "circuit_breaker.preferred_providers", "array"),
    ({"circuit_breaker": {"budget_tracking": {"user_id": 7}}}, "circuit_breaker.budget_tracking.user_id", "string"),
    ({"circuit_breaker": {"budget_tracking": []}}, "circuit_breaker.budget_tracking", "object"),
    ({"models": "gpt-4o"}, "models", "array"),
    ({"route": "cheapest"}, "route", "fallback"),
    ({"provider": []}, "provider", "object"),
    ({"provider": {"sort": "speed"}}, "provider.sort", "price, throughput, latency"),
    ({"provider": {"allow_fallbacks": "no"}}, "provider.allow_fallbacks", "boolean"),
    ({"provider": {"order": "openai"}}, "provider.order", "array"),
    ({"provider": {"max_price": {"prompt": -0.5}}}, "provider.max_price.prompt", "0 or more"),
    ({"provider": {"max_price": {"completion": "1"}}}, "provider.max_price.completion", "number"),
    ({"provider": {"data_collection": "maybe"}}, "provider.data_collection", "allow, deny"),
    ({"provider": {"require_parameters": None, "data_collection": 1}}, "provider.data_collection", "allow, deny"),
])
def test_wrong_types_and_values_are_rejected(body, param, words):
    error = _parse_error({"model": "auto", **body})
    assert error.param == param
    assert param in error.message and words in error.message


# ---- needs -----------------------------------------------------------------------------------------------
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(("body", "expected"), [
    ({"messages": [{"role": "user", "content": "hi"}]}, Needs(messages=[{"role": "user", "content": "hi"}])),
    ({"tools": [TOOL]}, Needs(tools=True)),
    ({"tools": [TOOL], "tool_choice": "none"}, Needs()),
    ({"tools": [TOOL], "tool_choice": "required"}, Needs(tools=True)),
    ({"functions": [TOOL["function"]]}, Needs(tools=True)),
    ({"response_format": {"type": "json_object"}}, Needs(json_mode=True)),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, Needs(json_mode=True)),
    ({"response_format": {"type": "text"}}, Needs()),
    ({"stream": True}, Needs(streaming=True, stream=True)),
    ({"circuit_breaker": {"require_streaming": True}}, Needs(streaming=True)),
    ({"max_tokens": 50}, Needs(max_output=50)),
    ({"max_tokens": 50, "max_completion_tokens": 70}, Needs(max_output=70)),
])
def test_request_needs(body, expected):
    expected.messages = body.get("messages")
    assert request_needs(body) == expected


def test_request_needs_vision():
    body = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}
    assert request_needs(body).vision
    assert not request_needs({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}).vision


# ---- tokens ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "cl100k", "o200k"), [
    # Token ids as published in OpenAI's cookbook / tiktoken README for these encodings.
    ("hello world", [15339, 1917], [24912, 2375]),
    ("tiktoken is great!", [83, 1609, 5963, 374, 2294, 0], [83, 8251, 2488, 382, 2212, 0]),
    ("antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191],
     [493, 129901, 376, 160388, 21203, 2367]),
    ("お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
     [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
])
def test_exact_token_counts(text, cl100k, o200k):
    assert tokens._encoder("cl100k_base").encode_ordinary(text) == cl100k
    assert tokens._encoder("o200k_base").encode_ordinary(text) == o200k
    assert count_text(text, "cl100k_base") == len(cl100k)
    assert count_text(text, "o200k_base") == len(o200k)


COOKBOOK_MESSAGES = [  # OpenAI cookbook "How to count tokens with tiktoken": 129 tokens on gpt-4, 124 on gpt-4o
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
                                  "into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch "
                                                          "base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to "
                                                               "do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                "deliverable."},
]


def test_chat_overhead_matches_openai():
    body = {"messages": COOKBOOK_MESSAGES}
    assert estimate_prompt_tokens(body, mod("gpt-4")) == 129
    assert estimate_prompt_tokens(body, mod("gpt-3.5-turbo")) == 129
    assert estimate_prompt_tokens(body, mod("gpt-4o")) == 124
    assert estimate_prompt_tokens(body, mod("gpt-4o-mini", "azure", upstream="my-deployment")) == 124
    # One message: 3 + role (1) + content (2) = 6, + 3 reply priming = 9; a name adds 1 + its tokens.
    assert count_request({"messages": [{"role": "user", "content": "hello world"}]}) == 9
    assert count_request({"messages": [{"role": "user", "name": "bob", "content": "hello world"}]}) == 9 + 1 + 1


def test_images_count_a_fixed_85_tokens():
    text_only = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]}
    with_image = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hello world"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
    assert count_request(with_image) - count_request(text_only) == tokens.IMAGE_TOKENS == 85


@pytest.mark.parametrize(("model", "encoding"), [
    (mod("gpt-4o"), "o200k_base"), (mod("gpt-4.1-mini"), "o200k_base"), (mod("gpt-5"), "o200k_base"),
    (mod("o1"), "o200k_base"), (mod("o3-mini"), "o200k_base"), (mod("o4-mini"), "o200k_base"),
    (mod("chatgpt-4o-latest"), "o200k_base"), (mod("gpt-4"), "cl100k_base"), (mod("gpt-4-turbo"), "cl100k_base"),
    (mod("gpt-3.5-turbo"), "cl100k_base"), (mod("gpt-35-turbo", "azure"), "cl100k_base"),
    (mod("gpt-4o", "openai_compatible"), "o200k_base"),
    (mod("claude-3-haiku", "anthropic"), None), (mod("llama3.2", "ollama"), None),
    (mod("gpt-4o", "simulated"), None), (mod("omni-moderation", "openai"), None),
])
def test_which_models_are_counted_exactly(model, encoding):
    assert tokens.exact_encoding(model) == encoding


@pytest.mark.parametrize(("model", "factor"), [
    (mod("claude-sonnet-4-5", "anthropic"), tokens.ANTHROPIC_FACTOR),
    (mod("gemini-2.5-pro", "gemini"), tokens.GEMINI_FACTOR),
    (mod("llama3.3", "ollama"), tokens.LLAMA_FACTOR),
    (mod("mixtral", "ollama"), tokens.MISTRAL_FACTOR),
    (mod("qwen2.5-coder", "ollama"), tokens.QWEN_FACTOR),
    (mod("claude-3-5-sonnet", "openai_compatible"), tokens.ANTHROPIC_FACTOR),
    (mod("something-else", "ollama"), tokens.DEFAULT_FACTOR),
    (mod("custom-model", "anthropic"), tokens.ANTHROPIC_FACTOR),
])
def test_calibrated_estimate_for_other_models(model, factor):
    body = {"messages": COOKBOOK_MESSAGES}
    assert tokens.family_factor(model) == factor
    assert estimate_prompt_tokens(body, model) == math.ceil(124 * factor)


def test_counter_encodes_once_per_table():
    counter = PromptTokenCounter({"messages": COOKBOOK_MESSAGES})
    results = [counter(m) for m in (mod("gpt-4o"), mod("gpt-4o-mini"), mod("claude-3-haiku", "anthropic"),
                                    mod("gemini-2.5-flash", "gemini"), mod("gpt-4"))]
    assert results == [124, 124, math.ceil(124 * 1.15), 124, 129]
    assert set(counter._counts) == {"o200k_base", "cl100k_base"}


def test_tools_and_legacy_prompts_count():
    base = {"messages": [{"role": "user", "content": "hello world"}]}
    assert count_request({**base, "tools": [TOOL]}) > count_request(base)
    assert count_request({"prompt": "hello world"}) == 2
    assert count_request({"prompt": [1, 2, 3]}) == 3
    assert count_request({"prompt": ["hello world", "hello world"]}) == 4


def test_long_texts_are_counted_in_pieces_without_drift():
    text = "routing decisions need token counts " * 5000  # 180k characters: several pieces
    assert len(text) > 3 * tokens._PIECE_CHARS
    assert count_text(text) == len(tokens._encoder("o200k_base").encode_ordinary(text))
    special = "<|endoftext|> is plain text here"
    assert count_text(special) > 1


def test_counting_a_2kb_prompt_is_fast(capsys):
    tokens.warm_up()
    body = {"messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": ("Summarise the trade-offs of the routing strategies, "
                                                      "with code where useful. ") * 26}]}
    assert 1900 < len(body["messages"][1]["content"]) < 2200
    rounds = 500
    start = time.perf_counter()
    for _ in range(rounds):
        estimate_prompt_tokens(body, mod("gpt-4o"))
    micros = (time.perf_counter() - start) / rounds * 1e6
    with capsys.disabled():
        print(f"\n2 KB prompt, exact o200k count: {micros:.0f} µs")
    assert micros < 2000


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


@pytest.mark.parametrize(("text", "task"), [
    ("```python\nprint(1)\n```\nwhy does this fail?", "coding"),
    ("Fix this bug in my function", "coding"),
    ("Write a SQL query for monthly revenue", "coding"),
    ("Analyze the quarterly data and explain why sales dropped", "analysis"),
    ("Compare PostgreSQL and MySQL", "analysis"),
    ("Write a poem about the sea", "creative"),
    ("Imagine a story about a dragon", "creative"),
    ("Prove that the square root of 2 is irrational, step by step", "reasoning"),
    ("Hello, how are you?", "general"),
    ("", "general"),
])
def test_infer_task(text, task):
    messages = [{"role": "system", "content": "Write a poem"}, {"role": "assistant", "content": "```code```"},
                {"role": "user", "content": text}]
    assert infer_task(messages) == task


def test_infer_task_reads_text_parts_and_long_messages():
    assert infer_task([{"role": "user", "content": [{"type": "text", "text": "debug my python"}]}]) == "coding"
    long = "lorem ipsum " * 20_000 + "write me a haiku"
    assert infer_task([{"role": "user", "content": long}]) == "creative"
    assert infer_task(None) == "general"


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


@pytest.mark.parametrize(("value", "per_1k"), [
    (0.03, 0.03), ("0.03", 0.03), ("$0.03/1k_tokens", 0.03), ("$0.03 / 1K tokens", 0.03),
    ("$0.03 per 1k tokens", 0.03), ("$30/1M_tokens", 0.03), ("$30/1m tokens", 0.03),
    ("$0.00003/token", 0.03), ("$.5/1k", 0.5),
])
def test_parse_cost_limit(value, per_1k):
    assert parse_cost_limit(value) == pytest.approx(per_1k)


@pytest.mark.parametrize(("value", "ms"), [
    (1500, 1500), ("1500", 1500), ("1500ms", 1500), ("2s", 2000), ("1.5 seconds", 1500), ("2 sec", 2000),
    ("1m", 60_000),
])
def test_parse_duration(value, ms):
    assert parse_duration_ms(value) == ms


@pytest.mark.parametrize("raw", [
    {"gpt-4": {"fallback": ["azure"]}}, {"gpt-4": {"primary": ""}}, {"gpt-4": {"primary": "a", "fallback": [1]}},
    {"gpt-4": {"primary": "a", "cost_limit": "$1/1x"}}, {"gpt-4": {"primary": "a", "cost_limit": -1}},
    {"gpt-4": {"primary": "a", "performance_target": "fast"}}, {"gpt-4": {"primary": "a", "extra": 1}},
    {"gpt-4": "azure"},
])
def test_parse_route_table_rejects_bad_routes(raw):
    with pytest.raises(ValueError, match="route 'gpt-4'"):
        parse_route_table(raw)


def test_parse_route_table_accepts_the_seed_format():
    table = parse_route_table({"gpt-4": {"primary": "openai", "fallback": ["azure"], "cost_limit": "$0.03/1k_tokens",
                                         "performance_target": "2s"}})
    rule = table["gpt-4"]
    assert (rule.primary, rule.fallback, rule.performance_target_ms) == ("openai", ("azure",), 2000)
    assert rule.cost_limit_per_1k == pytest.approx(0.03)


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
