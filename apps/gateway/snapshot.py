"""The in-memory configuration snapshot each gateway process serves from.

Composed from the facades of the apps below (tenants, providers, billing) in a worker thread at start-up and
rebuilt when the configuration version changes (Redis key `cb:config:version`, bumped after every committed
config write). Requests read it with plain dict lookups: no ORM query on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import close_old_connections

from apps.billing.facade import budget_specs_by_tenant, cost_rule_specs_by_tenant
from apps.core.vocabulary import VIRTUAL_MODELS  # noqa: F401 - re-exported to the gateway's modules
from apps.providers.facade import (  # noqa: F401 - KEYLESS_TYPES re-exported to the gateway's modules
    KEYLESS_TYPES,
    TYPE_PREFIXES,
    ModelInfo,
    ProviderInfo,
    VirtualModelInfo,
    model_infos,
    provider_infos,
    route_tables,
    virtual_model_infos,
)
from apps.tenants.facade import KeyInfo, TenantInfo, key_infos, tenant_infos

__all__ = ["KEYLESS_TYPES", "TYPE_PREFIXES", "VIRTUAL_MODELS", "KeyInfo", "ModelInfo", "ProviderInfo", "Snapshot",
           "TenantInfo", "VirtualModelInfo", "build_snapshot"]


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
    _by_type: dict[str, list[ModelInfo]] = field(default_factory=dict)
    memo: dict = field(default_factory=dict)  # what is derived from this snapshot alone (planning.candidates_for)

    def __post_init__(self):
        for model in self.models:
            for name in (model.model_id, *model.aliases):
                self._by_name.setdefault(name, []).append(model)
            self._by_type.setdefault(model.provider_type, []).append(model)

    def models_named(self, name: str) -> list[ModelInfo]:
        return self._by_name.get(name, [])

    def models_of_type(self, provider_type: str) -> list[ModelInfo]:
        return self._by_type.get(provider_type, [])

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

    def providers_for(self, tenant_id: int | None, *, named: bool = False) -> list[ProviderInfo]:
        """Usable providers a tenant may route to: its own first (bring your own key), then global; by priority.
        A fallback-only provider (the embedded default's implicit simulated one) counts only when nothing real
        is configured for the tenant, or when the request names its models (`named`)."""
        own = [p for p in self.providers if p.tenant_id is not None and p.tenant_id == tenant_id]
        shared = [p for p in self.providers if p.tenant_id is None]
        usable = [p for p in own + shared if p.usable]
        if named:
            return usable
        return [p for p in usable if not p.fallback_only] or usable


def build_snapshot(version) -> Snapshot:
    """Read the whole configuration through the apps' facades. Runs in a thread, never on the event loop."""
    close_old_connections()
    try:
        tenants = tenant_infos()
        keys = key_infos()
        providers = provider_infos()
        models = model_infos()
        virtual_models = virtual_model_infos()
        routes = route_tables()
        budgets = budget_specs_by_tenant()
        cost_rules = cost_rule_specs_by_tenant()
    finally:
        close_old_connections()
    return Snapshot(version=version, tenants=tenants, keys=keys, providers=providers, models=models,
                    virtual_models=virtual_models, routes=routes, budgets=budgets, cost_rules=cost_rules)
