"""The in-memory configuration snapshot each gateway process serves from.

Built through the ORM (in a worker thread) at start-up and rebuilt when the configuration version
changes (Redis key `cb:config:version`, bumped after every committed config write). Requests read it
with plain dict lookups: no ORM query on the hot path.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from apps.core.vocabulary import VIRTUAL_MODELS  # noqa: F401 - re-exported to the gateway's modules

logger = logging.getLogger(__name__)

# Provider types that work without a key (local servers) or may have none (self-hosted compatible APIs).
KEYLESS_TYPES = {"ollama", "simulated", "openai_compatible"}
# Prefixes users write in `provider/model` names, OpenRouter style.
TYPE_PREFIXES = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "google": "gemini",
                 "gemini": "gemini", "ollama": "ollama", "simulated": "simulated"}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    tenant_id: int
    scopes: frozenset
    expires_at: datetime | None
    revoked: bool
    user_label: str
    project_label: str
    limits: tuple = (None, None, None)  # rpm, tpm, concurrent overrides (None: the settings' default)


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: int
    slug: str
    active: bool
    routing_strategy: str
    limits: tuple = (None, None, None)  # rpm, tpm, concurrent for the whole tenant (None: no limit)


@dataclass(slots=True)
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


@dataclass(frozen=True, slots=True)
class VirtualModelInfo:
    name: str
    strategy: str
    candidates: tuple[str, ...]  # model names; empty = every reachable chat model
    constraints: dict  # circuit_breaker options applied to every request


@dataclass(slots=True)
class Snapshot:
    version: object
    tenants: dict[int, TenantInfo]
    keys: dict[str, KeyInfo]  # by SHA-256 of the secret
    providers: list[ProviderInfo]
    models: list[ModelInfo]
    virtual_models: dict[tuple[int | None, str], VirtualModelInfo] = field(default_factory=dict)
    routes: dict[int | None, dict[str, dict]] = field(default_factory=dict)  # model_specific tables
    budgets: dict[int, list] = field(default_factory=dict)  # tenant id -> BudgetSpecs (apps.billing)
    cost_rules: dict[int | None, list] = field(default_factory=dict)  # tenant id (None: global only) -> RuleSpecs
    _by_name: dict[str, list[ModelInfo]] = field(default_factory=dict)

    def __post_init__(self):
        for model in self.models:
            for name in (model.model_id, *model.aliases):
                self._by_name.setdefault(name, []).append(model)

    def models_named(self, name: str) -> list[ModelInfo]:
        return self._by_name.get(name, [])

    def tenant_id_for_slug(self, slug: str) -> int | None:
        for tenant in self.tenants.values():
            if tenant.slug == slug and tenant.active:
                return tenant.id
        return None

    def virtual_model(self, tenant_id: int | None, name: str) -> VirtualModelInfo | None:
        """The tenant's own definition first, then a global one."""
        return self.virtual_models.get((tenant_id, name)) or self.virtual_models.get((None, name))

    def cost_rules_for(self, tenant_id: int | None) -> list:
        return self.cost_rules.get(tenant_id) or self.cost_rules.get(None) or []

    def routes_for(self, tenant_id: int | None) -> dict[str, dict]:
        return {**self.routes.get(None, {}), **(self.routes.get(tenant_id, {}) if tenant_id is not None else {})}

    def providers_for(self, tenant_id: int | None) -> list[ProviderInfo]:
        """Usable providers a tenant may route to: its own first (bring your own key), then global; by priority."""
        own = [p for p in self.providers if p.tenant_id is not None and p.tenant_id == tenant_id]
        shared = [p for p in self.providers if p.tenant_id is None]
        return [p for p in own + shared if p.usable]


def build_snapshot(version) -> Snapshot:
    """Read the whole configuration through the ORM. Runs in a thread, never on the event loop."""
    from django.conf import settings
    from django.db import close_old_connections

    from apps.billing.facade import budget_specs_by_tenant, cost_rule_specs_by_tenant
    from apps.core.crypto import DecryptionError
    from apps.providers.models import ModelEntry, ModelRoute, Provider, ProviderCredential, Source, VirtualModel
    from apps.tenants.models import ApiKey, Tenant

    close_old_connections()
    try:
        tenants = {t.id: TenantInfo(t.id, t.slug, t.is_active, t.default_routing_strategy,
                                    (t.rate_limit_rpm, t.rate_limit_tpm, t.max_concurrent))
                   for t in Tenant.objects.all()}
        keys = {
            k.key_hash: KeyInfo(k.id, k.tenant_id, frozenset(k.scopes or ()), k.expires_at, k.revoked_at is not None,
                                k.user_label, k.project_label, (k.rate_limit_rpm, k.rate_limit_tpm, k.max_concurrent))
            for k in ApiKey.objects.all()
        }
        credentials: dict[int, list[tuple[int | None, str]]] = {}
        for credential in ProviderCredential.objects.filter(enabled=True).select_related("provider"):
            try:
                secret = credential.secret()
            except (DecryptionError, LookupError) as exc:
                # A key this process cannot read is skipped, loudly; the rest of the config still loads.
                logger.warning("provider credential %s unusable: %s", credential.pk, type(exc).__name__)
                continue
            credentials.setdefault(credential.provider_id, []).append((credential.pk, secret))
        providers = []
        env_slugs = {spec.slug for spec in settings.ENV_PROVIDERS}
        for p in Provider.objects.filter(enabled=True).order_by("priority", "id"):
            if p.source == Source.ENVIRONMENT:
                # Mirrored rows count only where this process's environment configures them.
                wanted = settings.SIMULATED_PROVIDER if p.type == "simulated" else p.slug in env_slugs
                if not wanted:
                    continue
            providers.append(ProviderInfo(p.id, p.slug, p.tenant_id, p.type, p.effective_base_url.rstrip("/"),
                                          p.priority, dict(p.options or {}), p.collects_data,
                                          credentials.get(p.id, []), p.name))
        models = [
            ModelInfo(m.model_id, m.provider_type, m.provider_id, m.effective_upstream_name, tuple(m.aliases or ()),
                      m.mode, m.context_window, m.max_output_tokens, m.input_price, m.output_price,
                      m.cached_input_price, m.cache_write_price, frozenset(m.capabilities), tuple(m.tags or ()),
                      int(m.created_at.timestamp()))
            for m in ModelEntry.objects.filter(enabled=True)
        ]
        virtual_models = {(v.tenant_id, v.name): VirtualModelInfo(v.name, v.strategy, tuple(v.candidates or ()),
                                                                  dict(v.constraints or {}))
                          for v in VirtualModel.objects.filter(enabled=True)}
        routes: dict[int | None, dict[str, dict]] = {}
        for route in ModelRoute.objects.filter(enabled=True):
            routes.setdefault(route.tenant_id, {})[route.model] = route.as_route()
        budgets = budget_specs_by_tenant()
        cost_rules = cost_rule_specs_by_tenant()
    finally:
        close_old_connections()
    return Snapshot(version, tenants, keys, providers, models, virtual_models, routes, budgets, cost_rules)
