"""Which deployments (provider × model) can serve a requested model name, for one tenant, in order.

Names: catalogue ids (`gpt-4o`), aliases (`claude-3-haiku`), OpenRouter style `provider/model`
(`anthropic/claude-3-haiku`, by provider type or by the provider's slug), `provider/anything` for
upstream models the catalogue does not list (`ollama/llama3.2`), and the virtual models.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from apps.core.errors import InvalidRequest, ModelNotFound

from .snapshot import TYPE_PREFIXES, VIRTUAL_MODELS, ModelInfo, ProviderInfo, Snapshot

ALL_CAPABILITIES = frozenset({"streaming", "tools", "vision", "json_mode", "embeddings"})
MODES_FOR = {"chat": ("chat",), "embedding": ("embedding",), "completion": ("completion", "chat")}


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: ProviderInfo
    model: ModelInfo


def _serves(provider: ProviderInfo, model: ModelInfo) -> bool:
    if model.provider_id is not None:
        return model.provider_id == provider.id
    return model.provider_type == provider.type


def passthrough_model(name: str, provider: ProviderInfo, mode: str) -> ModelInfo:
    """A model the catalogue does not list, sent upstream as named; unpriced, capabilities unknown (assumed)."""
    zero = Decimal(0)
    return ModelInfo(name, provider.type, provider.id, name, (), mode, 0, 0, zero, zero, None, None,
                     ALL_CAPABILITIES, (), 0)


def resolve(snapshot: Snapshot, tenant_id: int | None, name: str, *, mode: str = "chat") -> list[Candidate]:
    providers = snapshot.providers_for(tenant_id)
    modes = MODES_FOR[mode]
    if name in VIRTUAL_MODELS:
        return _virtual(snapshot, providers, modes, name)

    named = snapshot.models_named(name)
    candidates = [Candidate(p, m) for p in providers for m in named if _serves(p, m)]
    if not candidates and "/" in name:
        prefix, rest = name.split("/", 1)
        chosen = [p for p in providers if p.slug == prefix or TYPE_PREFIXES.get(prefix) == p.type]
        inner = snapshot.models_named(rest)
        for provider in chosen:
            listed = [m for m in inner if _serves(provider, m)]
            if listed:
                candidates += [Candidate(provider, m) for m in listed]
            elif rest:
                candidates.append(Candidate(provider, passthrough_model(rest, provider, modes[0])))
    if not candidates:
        raise ModelNotFound(f"The model `{name}` does not exist or you do not have access to it.", param="model")
    suitable = [c for c in candidates if c.model.mode in modes]
    if not suitable:
        kind = {"chat": "chat completions", "embedding": "embeddings", "completion": "completions"}[mode]
        raise InvalidRequest(f"The model `{name}` does not support {kind}.", param="model",
                             code="model_not_supported")
    return suitable


def _virtual(snapshot: Snapshot, providers: list[ProviderInfo], modes, name: str) -> list[Candidate]:
    """Until routing strategies land: each reachable provider's models, providers in preference order,
    the requested task's tagged models first (`cb:coding` → models tagged coding)."""
    task = name.split(":", 1)[1] if name.startswith("cb:") else None
    candidates = []
    for provider in providers:
        models = [m for m in snapshot.models if _serves(provider, m) and m.mode in modes]
        models.sort(key=lambda m: (task not in m.tags if task else False, m.input_price + m.output_price))
        candidates += [Candidate(provider, m) for m in models]
    if not candidates:
        raise ModelNotFound(f"No model is reachable for `{name}`: configure a provider first.", param="model")
    return candidates


def reachable_models(snapshot: Snapshot, tenant_id: int | None) -> list[Candidate]:
    """One entry per model id the tenant can reach (first provider in preference order wins)."""
    seen: dict[str, Candidate] = {}
    for provider in snapshot.providers_for(tenant_id):
        for model in snapshot.models:
            if model.model_id not in seen and _serves(provider, model):
                seen[model.model_id] = Candidate(provider, model)
    return list(seen.values())
