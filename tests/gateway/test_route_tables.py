"""Tenants' model_specific route tables: cost limits, performance targets, validation."""

from __future__ import annotations

import pytest

from apps.gateway.route_tables import parse_cost_limit, parse_duration_ms, parse_route_table


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
