"""Which deployments (provider × model) can serve a requested model name, for one tenant, in order.

Names: catalogue ids (`gpt-4o`), aliases (`claude-3-haiku`), OpenRouter style `provider/model`
(`anthropic/claude-3-haiku`, by provider type or by the provider's slug), `provider/anything` for
upstream models the catalogue does not list (`ollama/llama3.2`), and the virtual models.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

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


# Version suffixes of one model family: dated (-2024-08-06, -20240806, -0613), -latest, -preview, -exp, @version.
_VERSION_SUFFIX = re.compile(r"(@[\w.-]+|-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest|preview|exp))$")
# Local servers: a model they serve that the catalogue lacks costs nothing.
FREE_TYPES = frozenset({"ollama", "simulated"})


def family_name(name: str) -> str:
    """`gpt-4o-2024-08-06` → `gpt-4o`; `claude-3-5-sonnet-latest` → `claude-3-5-sonnet`; repeatedly."""
    while True:
        stripped = _VERSION_SUFFIX.sub("", name)
        if stripped == name or not stripped:
            return name
        name = stripped


def catalogued_family(snapshot: Snapshot, provider_type: str, name: str) -> ModelInfo | None:
    """The catalogued model of `provider_type` whose id or alias (either without version suffix) is the longest
    prefix of `name` without its version suffix, on a `-`, `:` or `.` boundary."""
    wanted = family_name(name)
    best, best_len = None, 0
    for model in snapshot.models_of_type(provider_type):
        for known in (model.model_id, *model.aliases):
            for key in {known, family_name(known)}:
                if len(key) > best_len and (wanted == key or wanted[len(key):len(key) + 1] in ("-", ":", ".")
                                            and wanted.startswith(key)):
                    best, best_len = model, len(key)
    return best


def passthrough_model(name: str, provider: ProviderInfo, mode: str, snapshot: Snapshot | None = None) -> ModelInfo:
    """A model the catalogue does not list, sent upstream as named, capabilities unknown (assumed). Priced as
    its catalogued family (a dated or versioned name of a known model), else at the operator's default price
    (DEFAULT_PRICE_PER_1K_INPUT/OUTPUT), else free on local servers and otherwise unpriced (`priced` False:
    budgets refuse it rather than count it at 0)."""
    family = catalogued_family(snapshot, provider.type, name) if snapshot is not None else None
    if family is not None:
        return dataclasses.replace(family, model_id=name, provider_id=provider.id, upstream_name=name, aliases=())
    zero = Decimal(0)
    price_in, price_out = settings.DEFAULT_PRICE_PER_1K_INPUT, settings.DEFAULT_PRICE_PER_1K_OUTPUT
    priced = provider.type in FREE_TYPES or price_in is not None or price_out is not None
    per_token_in = (price_in or zero) / 1000 if provider.type not in FREE_TYPES else zero
    per_token_out = (price_out or zero) / 1000 if provider.type not in FREE_TYPES else zero
    return ModelInfo(name, provider.type, provider.id, name, (), mode, 0, 0, per_token_in, per_token_out, None,
                     None, ALL_CAPABILITIES, (), 0, priced)


def resolve(snapshot: Snapshot, tenant_id: int | None, name: str, *, mode: str = "chat") -> list[Candidate]:
    modes = MODES_FOR[mode]
    if name in VIRTUAL_MODELS:
        return _virtual(snapshot, snapshot.providers_for(tenant_id), modes, name)
    providers = snapshot.providers_for(tenant_id, named=True)  # a model named explicitly may be a simulated one

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
                candidates.append(Candidate(provider, passthrough_model(rest, provider, modes[0], snapshot)))
    if not candidates and "/" not in name and family_name(name) != name:
        # A dated or versioned name of a catalogued model (`gpt-4o-2024-08-06`): sent as named, priced as its family.
        for provider in providers:
            family = catalogued_family(snapshot, provider.type, name)
            if family is not None and _serves(provider, family):
                candidates.append(Candidate(provider, passthrough_model(name, provider, modes[0], snapshot)))
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
    for provider in snapshot.providers_for(tenant_id, named=True):
        for model in snapshot.models:
            if model.model_id not in seen and _serves(provider, model):
                seen[model.model_id] = Candidate(provider, model)
    return list(seen.values())
