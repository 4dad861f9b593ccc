"""Tenant-scoped reads. `access_*` helpers answer missing and foreign objects alike."""

from __future__ import annotations

from django.db.models import QuerySet

from .facade import KEY_PREFIX, key_hash
from .models import ApiKey, Membership, Tenant


def api_key_from_secret(secret: str | None) -> ApiKey | None:
    """The usable key for a presented secret, or None (unknown, revoked, expired, inactive tenant)."""
    if not secret or not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    key = ApiKey.objects.select_related("tenant").filter(key_hash=key_hash(secret)).first()
    if key is None or not key.is_usable or not key.tenant.is_active:
        return None
    return key


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant=tenant)


def tenants_for_user(*, user) -> QuerySet[Tenant]:
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user)


def membership_role(*, user, tenant: Tenant) -> str | None:
    if user.is_superuser:
        return Membership.Role.OWNER
    return Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True).first()
