"""Every adapter, and what the product derives from them: `Provider.type` choices, default base URLs, the
types that need no key, and the prefixes of `provider/model` names. Adding a protocol = one adapter module
declaring its facts (see `base.Adapter`) and one line here."""

from __future__ import annotations

from .anthropic import AnthropicAdapter
from .azure import AzureAdapter
from .base import Adapter
from .gemini import GeminiAdapter
from .ollama import OllamaAdapter
from .openai import OpenAIAdapter, OpenAICompatibleAdapter
from .simulated import SimulatedAdapter

# In the order people see them (the `Provider.type` choices, hence the migrations, follow it).
ADAPTER_CLASSES: tuple[type[Adapter], ...] = (
    OpenAIAdapter, AzureAdapter, AnthropicAdapter, GeminiAdapter, OllamaAdapter, OpenAICompatibleAdapter,
    SimulatedAdapter,
)
_adapters: dict[str, Adapter] = {cls.provider_type: cls() for cls in ADAPTER_CLASSES}


def get(provider_type: str) -> Adapter:
    """The adapter serving `provider_type` (KeyError for an unknown type)."""
    return _adapters[provider_type]


def adapters() -> tuple[Adapter, ...]:
    return tuple(_adapters.values())


def provider_type_choices() -> list[tuple[str, str]]:
    """(type, label) pairs, for `Provider.type`."""
    return [(a.provider_type, a.label) for a in _adapters.values()]


def default_base_urls() -> dict[str, str]:
    """Public endpoints of the types that have one."""
    return {a.provider_type: a.default_base_url for a in _adapters.values() if a.default_base_url}


def base_url_required_types() -> frozenset[str]:
    return frozenset(a.provider_type for a in _adapters.values() if a.base_url_required)


def keyless_types() -> frozenset[str]:
    return frozenset(a.provider_type for a in _adapters.values() if not a.needs_key)


def type_prefixes() -> dict[str, str]:
    """`provider/model` prefix → provider type, e.g. "google" → "gemini", "custom" → "openai_compatible"."""
    return {prefix: a.provider_type for a in _adapters.values() for prefix in a.prefixes}
