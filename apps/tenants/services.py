"""Writes for tenants, memberships and API keys. Keyword-only arguments, tenant first."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.crypto import mask

from .facade import KEY_PREFIX, key_hash
from .models import ApiKey, Membership, Tenant

DEFAULT_SCOPES = [ApiKey.Scope.INFERENCE.value]
_TOUCH_EVERY = timedelta(seconds=60)


def validate_scopes(scopes) -> list[str]:
    valid = set(ApiKey.Scope.values)
    if not isinstance(scopes, (list, tuple)) or not all(isinstance(s, str) for s in scopes):
        raise ValidationError({"scopes": "Scopes must be a list of strings."})
    unknown = sorted(set(scopes) - valid)
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(unknown)}. Valid: {', '.join(sorted(valid))}."})
    return sorted(set(scopes))


@transaction.atomic
def tenant_create(*, slug: str, name: str = "", default_routing_strategy: str = "") -> Tenant:
    tenant = Tenant(slug=slug, name=name or slug, default_routing_strategy=default_routing_strategy)
    tenant.full_clean()
    tenant.save()
    return tenant


def membership_set(*, tenant: Tenant, user, role: str = Membership.Role.MEMBER) -> Membership:
    membership, _ = Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes=None,
    user=None,
    user_label: str = "",
    project_label: str = "",
    expires_at: datetime | None = None,
    limits: dict | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret; the secret is never retrievable again."""
    key = ApiKey(
        **(limits or {}),
        tenant=tenant,
        name=name,
        user=user,
        user_label=user_label,
        project_label=project_label,
        expires_at=expires_at,
        scopes=validate_scopes(DEFAULT_SCOPES if scopes is None else scopes),
    )
    secret = api_key_issue_secret(api_key=key)
    key.full_clean(exclude=["key_hash", "hint"])
    key.save()
    return key, secret


def api_key_issue_secret(*, api_key: ApiKey) -> str:
    """Give an unsaved key its secret (hash and hint only are kept) and return the plaintext once."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key.key_hash = key_hash(secret)
    api_key.hint = mask(secret)
    return secret


def api_key_revoke(*, tenant: Tenant, api_key: ApiKey) -> ApiKey:
    if api_key.tenant_id != tenant.id:
        raise ApiKey.DoesNotExist
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key so hot keys do not write on every request."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _TOUCH_EVERY:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
