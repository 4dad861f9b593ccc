"""Route options parsing (the request's circuit_breaker, OpenRouter's models/route/provider fields and :floor /
:nitro suffixes) and what a request needs from a model. Pure functions: no database, no servers."""

from __future__ import annotations

import pytest

from apps.core.errors import ApiError
from apps.core.vocabulary import ROUTING_STRATEGIES
from apps.providers.route_options import Needs, parse_route_options, request_needs


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


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


# ---- needs -----------------------------------------------------------------------------------------------


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
