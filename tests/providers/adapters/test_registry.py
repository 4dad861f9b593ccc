"""The adapter registry is the one list of provider types: everything else is derived from the adapters."""

from apps.providers.adapters import registry
from apps.providers.adapters.openai import OpenAIStream
from apps.providers.models import BASE_URL_REQUIRED, DEFAULT_BASE_URLS, ProviderType


def test_provider_type_choices_come_from_the_adapters():
    assert ProviderType.values == [a.provider_type for a in registry.adapters()]
    assert ProviderType.GEMINI.label == "Google Gemini" and ProviderType.OPENAI_COMPATIBLE == "openai_compatible"
    assert all(registry.get(t).provider_type == t for t in ProviderType.values)


def test_endpoints_keys_and_prefixes_are_declared_per_adapter():
    assert DEFAULT_BASE_URLS["openai"] == "https://api.openai.com/v1" and "azure" not in DEFAULT_BASE_URLS
    assert {"azure", "openai_compatible"} == BASE_URL_REQUIRED
    assert registry.keyless_types() == {"ollama", "simulated", "openai_compatible"}
    prefixes = registry.type_prefixes()
    assert prefixes["google"] == prefixes["gemini"] == "gemini" and prefixes["custom"] == "openai_compatible"


def test_completions_stream_translator_is_chosen_by_the_adapter():
    for provider_type in ("openai", "azure", "openai_compatible"):
        adapter = registry.get(provider_type)
        assert adapter.supports_completions
        assert type(adapter.completions_stream(None, None)) is OpenAIStream
