"""OpenRouter's `reasoning` request object, read once and turned into each protocol's own setting.

`reasoning: {effort: low|medium|high, max_tokens, exclude, enabled}` (validated by the gateway) means:
- OpenAI reasoning models (o-series, gpt-5): `reasoning_effort`; a bare `max_tokens` picks the effort whose
  Gemini-style budget it reaches; other OpenAI models get nothing (they refuse the parameter);
- Anthropic: `thinking: {type: enabled, budget_tokens}` — `max_tokens` as given, else the effort's share of the
  output cap (OpenRouter's rule: high 80 %, medium 50 %, low 20 %, within 1,024..32,000);
- Gemini: `thinkingConfig: {thinkingBudget, includeThoughts}`;
- every other protocol: dropped.
The model's reasoning text comes back as the message's (or delta's) `reasoning`, unless `exclude`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EFFORTS = ("minimal", "low", "medium", "high")
EFFORT_SHARES = {"minimal": 0.1, "low": 0.2, "medium": 0.5, "high": 0.8}
# Gemini's own OpenAI-compatible endpoint maps reasoning_effort to these thinking budgets.
EFFORT_BUDGETS = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576}
ANTHROPIC_MIN_BUDGET, ANTHROPIC_MAX_BUDGET = 1024, 32000
OPENAI_REASONING_MODEL = re.compile(r"^(?:.*/)?(?:o\d|gpt-5|codex)")


@dataclass(frozen=True, slots=True)
class Reasoning:
    enabled: bool
    effort: str | None = None
    max_tokens: int | None = None
    exclude: bool = False


def reasoning_of(body: dict) -> Reasoning | None:
    """The request's reasoning wish (OpenRouter's object, else OpenAI's `reasoning_effort`), or None."""
    spec = body.get("reasoning")
    if isinstance(spec, dict):
        effort, max_tokens = spec.get("effort"), spec.get("max_tokens")
        enabled = spec.get("enabled")
        if enabled is None:
            enabled = bool(effort or max_tokens) or not spec.get("exclude")
        if effort == "none":
            enabled, effort = False, None
        return Reasoning(bool(enabled), effort, max_tokens, bool(spec.get("exclude")))
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        return Reasoning(effort != "none", effort if effort in EFFORTS else None)
    return None


def openai_effort(reasoning: Reasoning) -> str | None:
    if not reasoning.enabled:
        return None
    if reasoning.effort:
        return reasoning.effort
    if reasoning.max_tokens:
        return next((e for e in ("low", "medium") if reasoning.max_tokens <= EFFORT_BUDGETS[e]), "high")
    return "medium"


def is_openai_reasoning_model(model: str) -> bool:
    return bool(OPENAI_REASONING_MODEL.match(model))


def anthropic_budget(reasoning: Reasoning, max_output: int) -> int | None:
    if not reasoning.enabled:
        return None
    if reasoning.max_tokens:
        budget = reasoning.max_tokens
    else:
        budget = int(max_output * EFFORT_SHARES.get(reasoning.effort or "medium", 0.5))
    return max(ANTHROPIC_MIN_BUDGET, min(ANTHROPIC_MAX_BUDGET, budget))


def gemini_budget(reasoning: Reasoning) -> int:
    if not reasoning.enabled:
        return 0
    if reasoning.max_tokens:
        return reasoning.max_tokens
    return EFFORT_BUDGETS.get(reasoning.effort or "", -1)  # -1: Gemini's dynamic thinking
