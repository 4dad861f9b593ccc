"""Who a request acts for: an API key from the headers (/v1), or a tenant the platform names (in-process)."""

from __future__ import annotations

import time

from django.conf import settings

from apps.core.errors import AuthenticationFailed, PermissionDenied
from apps.tenants.facade import KEY_PREFIX, key_hash

from ..http import header
from ..snapshot import KeyInfo, Snapshot


def _mask(secret: str) -> str:
    return f"{secret[:3]}…{secret[-4:]}" if len(secret) > 10 else "…"


def presented_secret(scope) -> str | None:
    """The key as OpenAI (`Authorization: Bearer`), Azure (`api-key`) and Anthropic (`x-api-key`) clients send it."""
    auth = header(scope, b"authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return header(scope, b"api-key") or header(scope, b"x-api-key")


def authenticate(scope, snapshot: Snapshot) -> tuple[int | None, KeyInfo | None]:
    """The tenant id the request acts for and its key; (anonymous tenant, None) when keys are not required."""
    secret = presented_secret(scope)
    if secret and not settings.API_KEY_REQUIRED and not secret.startswith(KEY_PREFIX):
        # SDKs insist on some key; with keys optional a placeholder ("not-needed") means anonymous.
        secret = None
    if not secret:
        if settings.API_KEY_REQUIRED:
            raise AuthenticationFailed("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                                       type="invalid_request_error", code="missing_api_key")
        tenant_id = snapshot.tenant_id_for_slug(settings.ANONYMOUS_TENANT) if settings.ANONYMOUS_TENANT else None
        return tenant_id, None
    key = snapshot.keys.get(key_hash(secret))
    if key is None:
        raise AuthenticationFailed(f"Incorrect API key provided: {_mask(secret)}.", type="invalid_request_error")
    return _usable(snapshot, key), key


def authenticate_tenant(snapshot: Snapshot, tenant_id: int, key_id: int | None = None) -> KeyInfo | None:
    """For callers inside the platform, which act for a tenant they already checked (optionally through one of
    its keys, whose labels and limits then apply). The tenant must exist and be active."""
    tenant = snapshot.tenants.get(tenant_id)
    if tenant is None or not tenant.active:
        raise PermissionDenied("This tenant is disabled or does not exist.", code="tenant_inactive")
    if key_id is None:
        return None
    key = next((k for k in snapshot.keys.values() if k.id == key_id and k.tenant_id == tenant_id), None)
    if key is None:
        raise AuthenticationFailed("No such API key for this tenant.", type="invalid_request_error")
    _usable(snapshot, key)
    return key


def _usable(snapshot: Snapshot, key: KeyInfo) -> int:
    if key.revoked:
        raise AuthenticationFailed("This API key has been revoked.", type="invalid_request_error",
                                   code="api_key_revoked")
    if key.expires_at is not None and key.expires_at.timestamp() <= time.time():
        raise AuthenticationFailed("This API key has expired.", type="invalid_request_error", code="api_key_expired")
    tenant = snapshot.tenants.get(key.tenant_id)
    if tenant is None or not tenant.active:
        raise PermissionDenied("This API key's tenant is disabled.", code="tenant_inactive")
    if "inference" not in key.scopes:
        raise PermissionDenied("This API key lacks the 'inference' scope.", code="insufficient_scope")
    return key.tenant_id
