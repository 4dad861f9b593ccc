"""Costs from each provider's own usage shape, through the real adapter, against hand-computed values."""

from decimal import Decimal

import orjson
import pytest

from apps.gateway.costs import cost_of
from apps.gateway.snapshot import ModelInfo
from apps.providers.adapters import registry
from apps.providers.adapters.base import Target
from apps.providers.models import ModelEntry

pytestmark = pytest.mark.django_db


def info(model_id: str, provider_type: str) -> ModelInfo:
    m = ModelEntry.objects.get(model_id=model_id, provider_type=provider_type, provider=None)
    return ModelInfo(m.model_id, m.provider_type, None, m.effective_upstream_name, tuple(m.aliases), m.mode,
                     m.context_window, m.max_output_tokens, m.input_price, m.output_price, m.cached_input_price,
                     m.cache_write_price, frozenset(m.capabilities), tuple(m.tags), 0)


def usage_from(provider_type: str, model: str, raw: dict) -> dict:
    adapter = registry.get(provider_type)
    target = Target("p", provider_type, "http://upstream", "k", model)
    return adapter.chat_response(orjson.dumps(raw), target)["usage"]


def test_openai_cached_and_reasoning_tokens(catalogue):
    raw = {"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                     "prompt_tokens_details": {"cached_tokens": 400},
                     "completion_tokens_details": {"reasoning_tokens": 200}}}
    usage = usage_from("openai", "gpt-4o", raw)
    # 600 fresh x $2.50/M + 400 cached x $1.25/M + 500 out (reasoning included) x $10/M
    assert cost_of(info("gpt-4o", "openai"), usage) == Decimal("0.0070")


def test_anthropic_cache_reads_and_writes(catalogue):
    raw = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-sonnet-20241022",
           "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 1000,
                     "cache_creation_input_tokens": 200}}
    usage = usage_from("anthropic", "claude-3-5-sonnet-20241022", raw)
    assert usage["prompt_tokens"] == 1300 and usage["prompt_tokens_details"]["cached_tokens"] == 1000
    # 100 x $3/M + 1000 read x $0.30/M + 200 written x $3.75/M + 50 out x $15/M
    assert cost_of(info("claude-3-5-sonnet-20241022", "anthropic"), usage) == Decimal("0.0021")


def test_gemini_cached_and_thinking_tokens(catalogue):
    raw = {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
           "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 100, "cachedContentTokenCount": 600,
                             "thoughtsTokenCount": 50, "totalTokenCount": 1150}}
    usage = usage_from("gemini", "gemini-2.5-flash", raw)
    assert usage["completion_tokens"] == 150 and usage["completion_tokens_details"]["reasoning_tokens"] == 50
    # 400 fresh x $0.30/M + 600 cached x $0.03/M + 150 out (thinking included) x $2.50/M
    assert cost_of(info("gemini-2.5-flash", "gemini"), usage) == Decimal("0.000513")


def test_ollama_is_free_and_simulated_too(catalogue):
    raw = {"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": "stop",
           "message": {"role": "assistant", "content": "ok"}, "prompt_eval_count": 10, "eval_count": 20}
    usage = usage_from("ollama", "llama3.2", raw)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (10, 20)
    assert cost_of(info("llama3.2", "ollama"), usage) == 0


def test_no_usage_costs_nothing_and_bad_numbers_are_ignored(catalogue):
    model = info("gpt-4o", "openai")
    assert cost_of(model, None) == 0
    assert cost_of(model, {"prompt_tokens": -5, "completion_tokens": "many"}) == 0
