"""What a request cost, in USD, from the catalogue's per-token prices and the upstream's usage."""

from __future__ import annotations

from decimal import Decimal

from . import prompt_tokens
from .snapshot import ModelInfo

ZERO = Decimal(0)


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def cost_of(model: ModelInfo, usage: dict | None) -> Decimal:
    """Cached prompt tokens at the cached price, cache writes at the write price, the rest at list price."""
    if not usage:
        return ZERO
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details") or {}
    cached = min(_int(details.get("cached_tokens")), prompt)
    written = min(_int(details.get("cache_write_tokens")), prompt - cached)
    cached_price = model.cached_input_price if model.cached_input_price is not None else model.input_price
    write_price = model.cache_write_price if model.cache_write_price is not None else model.input_price
    return ((prompt - cached - written) * model.input_price + cached * cached_price + written * write_price
            + completion * model.output_price)


def worst_case_cost(body: dict, model: ModelInfo, max_output: int) -> Decimal:
    """The most this request can cost on `model`: every prompt token at list price (10 % margin for
    tokenizers we only estimate) plus the whole output allowance."""
    prompt = prompt_tokens.estimate_prompt_tokens(body, model)
    if prompt_tokens.exact_encoding(model) is None:
        prompt = int(prompt * 1.1) + 1
    return prompt * model.input_price + max_output * model.output_price
