"""What other layers may read of tenants and API keys: frozen dataclasses, built by explicit mappers.

The gateway composes its in-memory snapshot from `tenant_infos()` and `key_infos()` and authenticates a
presented secret by `key_hash(secret)`; a key created after its snapshot is found with `key_info_by_hash`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from .models import ApiKey, Tenant

KEY_PREFIX = "cb-"  # every key we issue starts with it; anything else is not ours


def key_hash(secret: str) -> str:
    """What is stored of a key. The secret carries 256 random bits, so a fast hash is safe and keeps
    authentication one indexed lookup."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: int
    slug: str
    active: bool
    routing_strategy: str
    limits: tuple = (None, None, None)  # rpm, tpm, concurrent for the whole tenant (None: no limit)
    request_logging: bool = False  # store prompt and response bodies (request logs)


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
    request_logging: bool = False  # request logs for this key whatever the tenant says


def tenant_info(tenant: Tenant) -> TenantInfo:
    return TenantInfo(
        id=tenant.id,
        slug=tenant.slug,
        active=tenant.is_active,
        routing_strategy=tenant.default_routing_strategy,
        limits=(tenant.rate_limit_rpm, tenant.rate_limit_tpm, tenant.max_concurrent),
        request_logging=tenant.request_logging,
    )


def key_info(key: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        tenant_id=key.tenant_id,
        scopes=frozenset(key.scopes or ()),
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
        user_label=key.user_label,
        project_label=key.project_label,
        limits=(key.rate_limit_rpm, key.rate_limit_tpm, key.max_concurrent),
        request_logging=key.request_logging,
    )


def tenant_infos() -> dict[int, TenantInfo]:
    """Every tenant, active or not (the gateway tells a disabled tenant's keys why they fail)."""
    return {tenant.id: tenant_info(tenant) for tenant in Tenant.objects.all()}


def key_infos() -> dict[str, KeyInfo]:
    """Every key by its hash, revoked and expired ones included (they get their own error)."""
    return {key.key_hash: key_info(key) for key in ApiKey.objects.all()}


def key_info_by_hash(hash_: str) -> KeyInfo | None:
    """One key by its hash (a unique index), or None."""
    key = ApiKey.objects.filter(key_hash=hash_).first()
    return None if key is None else key_info(key)
