"""What other layers may read of providers and the catalogue: dataclasses built by explicit mappers.

The gateway composes its in-memory snapshot from these. Credentials are decrypted here, in memory only, for the
process that routes with them; environment-mirrored providers count only where this process's environment
configures them.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from apps.core.crypto import DecryptionError

from .adapters import registry
from .models import ModelEntry, ModelRoute, Provider, ProviderCredential, Source, VirtualModel

logger = logging.getLogger(__name__)

# Provider types that work without a key (local servers) or may have none (self-hosted compatible APIs).
KEYLESS_TYPES = registry.keyless_types()
# Prefixes users write in `provider/model` names, OpenRouter style ("google" → "gemini", "custom" → …).
TYPE_PREFIXES = registry.type_prefixes()


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    id: int
    slug: str
    tenant_id: int | None
    type: str
    base_url: str
    priority: int
    options: dict
    collects_data: bool
    keys: list[tuple[int | None, str]]  # (credential id, secret); secrets live only in memory
    name: str = ""
    # The built-in simulated provider the embedded default enables implicitly: it serves a tenant only when
    # nothing real is configured for it, or when a request names it (`simulated/…`, `simulated-*`).
    fallback_only: bool = False
    _rotation: itertools.count = field(default_factory=itertools.count, repr=False)

    @property
    def usable(self) -> bool:
        return bool(self.keys) or self.type in KEYLESS_TYPES

    def next_key(self) -> tuple[int | None, str | None]:
        """Round-robin over this provider's keys (per process)."""
        if not self.keys:
            return None, None
        return self.keys[next(self._rotation) % len(self.keys)]

    def key_order(self) -> list[tuple[int | None, str | None]]:
        """Every key once, starting where round-robin is (retries move on to the next key)."""
        if not self.keys:
            return [(None, None)]
        start = next(self._rotation) % len(self.keys)
        return self.keys[start:] + self.keys[:start]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    model_id: str
    provider_type: str
    provider_id: int | None
    upstream_name: str
    aliases: tuple[str, ...]
    mode: str
    context_window: int
    max_output_tokens: int
    input_price: Decimal
    output_price: Decimal
    cached_input_price: Decimal | None
    cache_write_price: Decimal | None
    capabilities: frozenset
    tags: tuple[str, ...]
    created: int
    priced: bool = True  # False: a passthrough name nothing prices (no catalogue family, no default price)


@dataclass(frozen=True, slots=True)
class VirtualModelInfo:
    name: str
    strategy: str
    candidates: tuple[str, ...]  # model names; empty = every reachable chat model
    constraints: dict  # circuit_breaker options applied to every request


def provider_keys() -> dict[int, list[tuple[int | None, str]]]:
    """Enabled credentials' plaintext secrets by provider id. A key this process cannot read is skipped, loudly;
    the rest of the configuration still loads."""
    keys: dict[int, list[tuple[int | None, str]]] = {}
    for credential in ProviderCredential.objects.filter(enabled=True).select_related("provider"):
        try:
            secret = credential.secret()
        except (DecryptionError, LookupError) as exc:
            logger.warning("provider credential %s unusable: %s", credential.pk, type(exc).__name__)
            continue
        keys.setdefault(credential.provider_id, []).append((credential.pk, secret))
    return keys


def provider_info(provider: Provider, keys: list[tuple[int | None, str]]) -> ProviderInfo:
    return ProviderInfo(
        id=provider.id,
        slug=provider.slug,
        tenant_id=provider.tenant_id,
        type=provider.type,
        base_url=provider.effective_base_url.rstrip("/"),
        priority=provider.priority,
        options=dict(provider.options or {}),
        collects_data=provider.collects_data,
        keys=keys,
        name=provider.name,
        fallback_only=(provider.type == "simulated" and provider.source == Source.ENVIRONMENT
                       and not getattr(settings, "SIMULATED_PROVIDER_EXPLICIT", True)),
    )


def _configured_here(provider: Provider, env_slugs: set[str]) -> bool:
    """Mirrored rows count only where this process's environment configures them."""
    if provider.source != Source.ENVIRONMENT:
        return True
    return settings.SIMULATED_PROVIDER if provider.type == "simulated" else provider.slug in env_slugs


def provider_infos() -> list[ProviderInfo]:
    """Enabled providers this process can route to, by priority, each with its decrypted keys."""
    keys = provider_keys()
    env_slugs = {spec.slug for spec in settings.ENV_PROVIDERS}
    return [provider_info(p, keys.get(p.id, []))
            for p in Provider.objects.filter(enabled=True).order_by("priority", "id") if _configured_here(p, env_slugs)]


def model_info(entry: ModelEntry) -> ModelInfo:
    return ModelInfo(
        model_id=entry.model_id,
        provider_type=entry.provider_type,
        provider_id=entry.provider_id,
        upstream_name=entry.effective_upstream_name,
        aliases=tuple(entry.aliases or ()),
        mode=entry.mode,
        context_window=entry.context_window,
        max_output_tokens=entry.max_output_tokens,
        input_price=entry.input_price,
        output_price=entry.output_price,
        cached_input_price=entry.cached_input_price,
        cache_write_price=entry.cache_write_price,
        capabilities=frozenset(entry.capabilities),
        tags=tuple(entry.tags or ()),
        created=int(entry.created_at.timestamp()),
    )


def model_infos() -> list[ModelInfo]:
    """The enabled catalogue."""
    return [model_info(entry) for entry in ModelEntry.objects.filter(enabled=True)]


def virtual_model_info(virtual: VirtualModel) -> VirtualModelInfo:
    return VirtualModelInfo(
        name=virtual.name,
        strategy=virtual.strategy,
        candidates=tuple(virtual.candidates or ()),
        constraints=dict(virtual.constraints or {}),
    )


def virtual_model_infos() -> dict[tuple[int | None, str], VirtualModelInfo]:
    """Enabled virtual models by (tenant id or None for global, name)."""
    return {(v.tenant_id, v.name): virtual_model_info(v) for v in VirtualModel.objects.filter(enabled=True)}


def route_tables() -> dict[int | None, dict[str, dict]]:
    """The `model_specific` route tables: tenant id (None: global) → requested model → route."""
    routes: dict[int | None, dict[str, dict]] = {}
    for route in ModelRoute.objects.filter(enabled=True):
        routes.setdefault(route.tenant_id, {})[route.model] = route.as_route()
    return routes
