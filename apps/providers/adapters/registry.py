"""Adapter lookup by provider type."""

from __future__ import annotations

from importlib import import_module

from .base import Adapter

_MODULES = {
    "openai": ("openai", "OpenAIAdapter"),
    "openai_compatible": ("openai", "OpenAIAdapter"),
    "azure": ("azure", "AzureAdapter"),
    "anthropic": ("anthropic", "AnthropicAdapter"),
    "gemini": ("gemini", "GeminiAdapter"),
    "ollama": ("ollama", "OllamaAdapter"),
    "simulated": ("simulated", "SimulatedAdapter"),
}
_cache: dict[str, Adapter] = {}


def get(provider_type: str) -> Adapter:
    adapter = _cache.get(provider_type)
    if adapter is None:
        module, cls = _MODULES[provider_type]
        adapter = _cache[provider_type] = getattr(import_module(f"{__package__}.{module}"), cls)()
    return adapter
