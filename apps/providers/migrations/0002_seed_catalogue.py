"""Seed the catalogue with well-known models at public list prices (USD per 1M tokens, converted per token).

The data lives in this migration on purpose: later price changes are new migrations, so a database's
history says which prices applied when.
"""

from decimal import Decimal

from django.db import migrations

M = Decimal(1_000_000)
S, T, V, J, E = "streaming", "tools", "vision", "json_mode", "embeddings"
CHAT, EMB, CMPL = "chat", "embedding", "completion"

# (model_id, type, mode, context, max_out, in, out, cached_in, cache_write, caps, tags, aliases)
MODELS = [
    # OpenAI
    ("gpt-5", "openai", CHAT, 400000, 128000, "1.25", "10", "0.125", None, {S, T, V, J}, ["quality", "coding", "analysis", "reasoning"], []),
    ("gpt-5-mini", "openai", CHAT, 400000, 128000, "0.25", "2", "0.025", None, {S, T, V, J}, ["fast", "cheap", "coding"], []),
    ("gpt-5-nano", "openai", CHAT, 400000, 128000, "0.05", "0.40", "0.005", None, {S, T, V, J}, ["fast", "cheap"], []),
    ("gpt-4o", "openai", CHAT, 128000, 16384, "2.50", "10", "1.25", None, {S, T, V, J}, ["quality", "general", "coding", "analysis", "creative"], []),
    ("gpt-4o-mini", "openai", CHAT, 128000, 16384, "0.15", "0.60", "0.075", None, {S, T, V, J}, ["fast", "cheap", "general", "coding"], []),
    ("gpt-4.1", "openai", CHAT, 1047576, 32768, "2", "8", "0.50", None, {S, T, V, J}, ["quality", "coding", "analysis", "long_context"], []),
    ("gpt-4.1-mini", "openai", CHAT, 1047576, 32768, "0.40", "1.60", "0.10", None, {S, T, V, J}, ["fast", "cheap", "coding", "long_context"], []),
    ("gpt-4.1-nano", "openai", CHAT, 1047576, 32768, "0.10", "0.40", "0.025", None, {S, T, V, J}, ["fast", "cheap"], []),
    ("gpt-4-turbo", "openai", CHAT, 128000, 4096, "10", "30", None, None, {S, T, V, J}, ["quality"], []),
    ("gpt-4", "openai", CHAT, 8192, 8192, "30", "60", None, None, {S, T}, ["quality", "analysis"], []),
    ("gpt-3.5-turbo", "openai", CHAT, 16385, 4096, "0.50", "1.50", None, None, {S, T, J}, ["fast", "cheap", "general"], []),
    ("gpt-3.5-turbo-instruct", "openai", CMPL, 4096, 4096, "1.50", "2", None, None, {S}, ["fast"], []),
    ("o1", "openai", CHAT, 200000, 100000, "15", "60", "7.50", None, {S, T, V, J}, ["reasoning", "quality", "analysis"], []),
    ("o1-mini", "openai", CHAT, 128000, 65536, "1.10", "4.40", "0.55", None, {S}, ["reasoning", "coding"], []),
    ("o3", "openai", CHAT, 200000, 100000, "2", "8", "0.50", None, {S, T, V, J}, ["reasoning", "quality", "analysis", "coding"], []),
    ("o3-mini", "openai", CHAT, 200000, 100000, "1.10", "4.40", "0.55", None, {S, T, J}, ["reasoning", "coding", "cheap"], []),
    ("o4-mini", "openai", CHAT, 200000, 100000, "1.10", "4.40", "0.275", None, {S, T, V, J}, ["reasoning", "coding", "fast"], []),
    ("text-embedding-3-small", "openai", EMB, 8191, 0, "0.02", "0", None, None, {E}, ["embeddings", "cheap"], []),
    ("text-embedding-3-large", "openai", EMB, 8191, 0, "0.13", "0", None, None, {E}, ["embeddings", "quality"], []),
    ("text-embedding-ada-002", "openai", EMB, 8191, 0, "0.10", "0", None, None, {E}, ["embeddings"], []),
    # Azure OpenAI (global standard deployments; upstream name = deployment name, see provider options)
    ("gpt-4o", "azure", CHAT, 128000, 16384, "2.50", "10", "1.25", None, {S, T, V, J}, ["quality", "general", "coding", "analysis", "creative"], []),
    ("gpt-4o-mini", "azure", CHAT, 128000, 16384, "0.15", "0.60", "0.075", None, {S, T, V, J}, ["fast", "cheap", "general"], []),
    ("gpt-4.1", "azure", CHAT, 1047576, 32768, "2", "8", "0.50", None, {S, T, V, J}, ["quality", "coding", "analysis"], []),
    ("gpt-4.1-mini", "azure", CHAT, 1047576, 32768, "0.40", "1.60", "0.10", None, {S, T, V, J}, ["fast", "cheap", "coding"], []),
    ("text-embedding-3-small", "azure", EMB, 8191, 0, "0.02", "0", None, None, {E}, ["embeddings", "cheap"], []),
    ("text-embedding-3-large", "azure", EMB, 8191, 0, "0.13", "0", None, None, {E}, ["embeddings", "quality"], []),
    # Anthropic (cache read = 0.1 x input, cache write = 1.25 x input)
    ("claude-opus-4-5-20251101", "anthropic", CHAT, 200000, 64000, "5", "25", "0.50", "6.25", {S, T, V}, ["quality", "coding", "analysis", "creative", "reasoning"], ["claude-opus-4-5"]),
    ("claude-sonnet-4-5-20250929", "anthropic", CHAT, 200000, 64000, "3", "15", "0.30", "3.75", {S, T, V}, ["quality", "coding", "analysis", "reasoning"], ["claude-sonnet-4-5"]),
    ("claude-haiku-4-5-20251001", "anthropic", CHAT, 200000, 64000, "1", "5", "0.10", "1.25", {S, T, V}, ["fast", "cheap", "coding"], ["claude-haiku-4-5"]),
    ("claude-opus-4-1-20250805", "anthropic", CHAT, 200000, 32000, "15", "75", "1.50", "18.75", {S, T, V}, ["quality", "analysis", "creative", "reasoning"], ["claude-opus-4-1"]),
    ("claude-opus-4-20250514", "anthropic", CHAT, 200000, 32000, "15", "75", "1.50", "18.75", {S, T, V}, ["quality", "analysis", "creative"], ["claude-opus-4", "claude-opus-4-0"]),
    ("claude-sonnet-4-20250514", "anthropic", CHAT, 200000, 64000, "3", "15", "0.30", "3.75", {S, T, V}, ["quality", "coding", "analysis"], ["claude-sonnet-4", "claude-sonnet-4-0"]),
    ("claude-3-7-sonnet-20250219", "anthropic", CHAT, 200000, 64000, "3", "15", "0.30", "3.75", {S, T, V}, ["quality", "coding", "reasoning"], ["claude-3-7-sonnet", "claude-3-7-sonnet-latest"]),
    ("claude-3-5-sonnet-20241022", "anthropic", CHAT, 200000, 8192, "3", "15", "0.30", "3.75", {S, T, V}, ["quality", "coding", "analysis", "creative"], ["claude-3-5-sonnet", "claude-3-5-sonnet-latest"]),
    ("claude-3-5-haiku-20241022", "anthropic", CHAT, 200000, 8192, "0.80", "4", "0.08", "1", {S, T, V}, ["fast", "cheap", "coding"], ["claude-3-5-haiku", "claude-3-5-haiku-latest"]),
    ("claude-3-opus-20240229", "anthropic", CHAT, 200000, 4096, "15", "75", "1.50", "18.75", {S, T, V}, ["quality", "analysis", "creative"], ["claude-3-opus", "claude-3-opus-latest"]),
    ("claude-3-sonnet-20240229", "anthropic", CHAT, 200000, 4096, "3", "15", "0.30", "3.75", {S, T, V}, ["general"], ["claude-3-sonnet"]),
    ("claude-3-haiku-20240307", "anthropic", CHAT, 200000, 4096, "0.25", "1.25", "0.03", "0.30", {S, T, V}, ["fast", "cheap"], ["claude-3-haiku"]),
    # Google Gemini (prices for prompts up to the lower context tier)
    ("gemini-2.5-pro", "gemini", CHAT, 1048576, 65536, "1.25", "10", "0.125", None, {S, T, V, J}, ["quality", "coding", "analysis", "reasoning", "long_context"], []),
    ("gemini-2.5-flash", "gemini", CHAT, 1048576, 65536, "0.30", "2.50", "0.03", None, {S, T, V, J}, ["fast", "reasoning", "long_context"], []),
    ("gemini-2.5-flash-lite", "gemini", CHAT, 1048576, 65536, "0.10", "0.40", "0.01", None, {S, T, V, J}, ["fast", "cheap"], []),
    ("gemini-2.0-flash", "gemini", CHAT, 1048576, 8192, "0.10", "0.40", "0.025", None, {S, T, V, J}, ["fast", "cheap", "general"], []),
    ("gemini-2.0-flash-lite", "gemini", CHAT, 1048576, 8192, "0.075", "0.30", None, None, {S, T, V, J}, ["fast", "cheap"], []),
    ("gemini-1.5-pro", "gemini", CHAT, 2097152, 8192, "1.25", "5", "0.3125", None, {S, T, V, J}, ["quality", "analysis", "long_context"], ["gemini-1.5-pro-latest"]),
    ("gemini-1.5-flash", "gemini", CHAT, 1048576, 8192, "0.075", "0.30", "0.01875", None, {S, T, V, J}, ["fast", "cheap"], ["gemini-1.5-flash-latest"]),
    ("gemini-1.5-flash-8b", "gemini", CHAT, 1048576, 8192, "0.0375", "0.15", "0.01", None, {S, T, V, J}, ["fast", "cheap"], []),
    ("gemini-pro", "gemini", CHAT, 32760, 8192, "0.50", "1.50", None, None, {S, T}, ["general"], ["gemini-1.0-pro"]),
    ("gemini-embedding-001", "gemini", EMB, 2048, 0, "0.15", "0", None, None, {E}, ["embeddings", "quality"], []),
    ("text-embedding-004", "gemini", EMB, 2048, 0, "0", "0", None, None, {E}, ["embeddings", "cheap"], []),
    # Ollama: local models, no per-token price
    ("llama3.3", "ollama", CHAT, 131072, 8192, "0", "0", None, None, {S, T}, ["local", "cheap", "general"], []),
    ("llama3.2", "ollama", CHAT, 131072, 8192, "0", "0", None, None, {S, T}, ["local", "cheap", "fast"], []),
    ("llama3.2-vision", "ollama", CHAT, 131072, 8192, "0", "0", None, None, {S, V}, ["local", "cheap"], []),
    ("llama3.1", "ollama", CHAT, 131072, 8192, "0", "0", None, None, {S, T}, ["local", "cheap", "general"], []),
    ("llama3", "ollama", CHAT, 8192, 4096, "0", "0", None, None, {S}, ["local", "cheap"], []),
    ("mistral", "ollama", CHAT, 32768, 8192, "0", "0", None, None, {S, T}, ["local", "cheap", "fast"], []),
    ("mixtral", "ollama", CHAT, 32768, 8192, "0", "0", None, None, {S, T}, ["local", "cheap"], []),
    ("qwen2.5", "ollama", CHAT, 32768, 8192, "0", "0", None, None, {S, T}, ["local", "cheap", "general"], []),
    ("qwen2.5-coder", "ollama", CHAT, 32768, 8192, "0", "0", None, None, {S, T}, ["local", "cheap", "coding"], []),
    ("gemma2", "ollama", CHAT, 8192, 4096, "0", "0", None, None, {S}, ["local", "cheap"], []),
    ("phi3", "ollama", CHAT, 131072, 4096, "0", "0", None, None, {S}, ["local", "cheap", "fast"], []),
    ("codellama", "ollama", CHAT, 16384, 4096, "0", "0", None, None, {S}, ["local", "cheap", "coding"], []),
    ("deepseek-r1", "ollama", CHAT, 131072, 8192, "0", "0", None, None, {S}, ["local", "cheap", "reasoning", "analysis"], []),
    ("llava", "ollama", CHAT, 4096, 4096, "0", "0", None, None, {S, V}, ["local", "cheap"], []),
    ("nomic-embed-text", "ollama", EMB, 8192, 0, "0", "0", None, None, {E}, ["local", "embeddings"], []),
    ("mxbai-embed-large", "ollama", EMB, 512, 0, "0", "0", None, None, {E}, ["local", "embeddings"], []),
    # Built-in simulated provider (embedded default, demos): answers offline, costs nothing
    ("simulated-echo", "simulated", CHAT, 128000, 4096, "0", "0", None, None, {S, T, V, J}, ["simulated", "fast", "cheap", "general", "coding", "analysis", "creative"], []),
    ("simulated-embedding", "simulated", EMB, 8192, 0, "0", "0", None, None, {E}, ["simulated", "embeddings"], []),
]


def per_token(value):
    return None if value is None else Decimal(value) / M


def seed(apps, schema_editor):
    ModelEntry = apps.get_model("providers", "ModelEntry")
    for (model_id, ptype, mode, context, max_out, price_in, price_out, cached, write, caps, tags, aliases) in MODELS:
        ModelEntry.objects.update_or_create(
            provider_type=ptype, model_id=model_id, provider=None,
            defaults={
                "mode": mode, "context_window": context, "max_output_tokens": max_out,
                "input_price": per_token(price_in), "output_price": per_token(price_out),
                "cached_input_price": per_token(cached), "cache_write_price": per_token(write),
                "supports_streaming": S in caps, "supports_tools": T in caps, "supports_vision": V in caps,
                "supports_json_mode": J in caps, "supports_embeddings": E in caps,
                "tags": tags, "aliases": aliases,
            },
        )


def unseed(apps, schema_editor):
    ModelEntry = apps.get_model("providers", "ModelEntry")
    for row in MODELS:
        ModelEntry.objects.filter(provider_type=row[1], model_id=row[0], provider=None).delete()


class Migration(migrations.Migration):
    dependencies = [("providers", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
