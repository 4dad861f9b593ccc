"""What the routing engine knows about one candidate while it plans: its live health (`CandidateHealth`, or any
`HealthLike`), its row (tier, token count, blended price for this request) and how request names match it
(provider slug/type, model id/alias). Shared by the constraints and the strategies."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .resolve import TYPE_PREFIXES, Candidate
from .snapshot import ModelInfo, ProviderInfo


class HealthLike(Protocol):
    requests: int
    errors: int
    error_rate: float
    consecutive_failures: int
    latency_ms: float | None
    ttft_ms: float | None
    circuit: str
    rate_limited_until: float | None
    inflight: int

    @property
    def available(self) -> bool: ...


@dataclass(slots=True)
class CandidateHealth:
    """What routing reads about one candidate's live health (the resilience layer may pass its own type)."""

    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    consecutive_failures: int = 0
    latency_ms: float | None = None  # moving average of the whole request
    ttft_ms: float | None = None  # moving average of time to first token (streams)
    circuit: str = "closed"  # closed | open | half_open
    rate_limited_until: float | None = None  # epoch seconds
    inflight: int = 0

    @property
    def available(self) -> bool:
        if self.circuit == "open":
            return False
        return not (self.rate_limited_until and self.rate_limited_until > time.time())


def candidate_key(candidate: Candidate) -> str:
    return f"{candidate.provider.id}:{candidate.model.model_id}"


def candidate_label(candidate: Candidate) -> str:
    return f"{candidate.provider.slug}/{candidate.model.model_id}"


@dataclass(slots=True, eq=False)
class Row:
    index: int
    candidate: Candidate
    tier: int
    health: object | None
    prompt_tokens: int
    price: float  # blended USD per 1k tokens for this request


def blended_price_per_1k(model: ModelInfo, prompt_tokens: int, expected_output: int) -> float:
    total = prompt_tokens + expected_output
    if total <= 0:
        return float(model.input_price) * 1000
    return (float(model.input_price) * prompt_tokens + float(model.output_price) * expected_output) / total * 1000


def provider_matches(provider: ProviderInfo, name: str) -> bool:
    name = name.strip().lower()
    return name in (provider.slug.lower(), provider.type) or TYPE_PREFIXES.get(name) == provider.type


def model_matches(candidate: Candidate, name: str) -> bool:
    model = candidate.model
    if name in (model.model_id, model.upstream_name) or name in model.aliases:
        return True
    if "/" in name:
        prefix, rest = name.split("/", 1)
        return provider_matches(candidate.provider, prefix) and model_matches(candidate, rest)
    return False


def first_match(names: Sequence[str], test) -> int:
    for index, name in enumerate(names):
        if test(name):
            return index
    return len(names)
