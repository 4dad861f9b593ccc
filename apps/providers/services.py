"""Writes for providers, credentials and the catalogue. Keyword-only, tenant first.

Callers reach existing rows through `access.py` (`<thing>_access_by_id(..., for_write=True)`), which owns the
tenant rule (another tenant's row is missing; global rows are staff's to change); services assume that.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.core import crypto

from .models import ModelEntry, Provider, ProviderCredential, Source

_PROVIDER_FIELDS = ("slug", "name", "type", "base_url", "enabled", "priority", "collects_data", "options")


def _ensure_writable(provider: Provider) -> None:
    if provider.source == Source.ENVIRONMENT:
        raise PermissionDenied("Environment providers are read-only; change the environment instead.")


@transaction.atomic
def provider_create(*, tenant, **fields) -> Provider:
    unknown = set(fields) - set(_PROVIDER_FIELDS)
    if unknown:
        raise TypeError(f"unknown provider fields: {sorted(unknown)}")
    provider = Provider(tenant=tenant, **fields)
    provider.full_clean()
    provider.save()
    return provider


@transaction.atomic
def provider_update(*, tenant, provider: Provider, **fields) -> Provider:
    _ensure_writable(provider)
    for name, value in fields.items():
        if name not in _PROVIDER_FIELDS:
            raise TypeError(f"unknown provider field: {name}")
        setattr(provider, name, value)
    provider.full_clean()
    provider.save()
    return provider


def provider_delete(*, tenant, provider: Provider) -> None:
    _ensure_writable(provider)
    provider.delete()


def _validate_secret(api_key: str) -> str:
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValidationError({"api_key": "The API key must not be empty."})
    if len(api_key) > 4096 or any(ch in api_key for ch in "\r\n\x00"):
        raise ValidationError({"api_key": "The API key has invalid characters or is too long."})
    return api_key.strip()


@transaction.atomic
def credential_create(*, tenant, provider: Provider, api_key: str, name: str = "",
                      enabled: bool = True) -> ProviderCredential:
    _ensure_writable(provider)
    credential = ProviderCredential(provider=provider, name=name, enabled=enabled)
    credential.set_secret(_validate_secret(api_key))
    credential.full_clean(exclude=["encrypted_key", "hint"])
    credential.save()
    return credential


@transaction.atomic
def credential_update(*, tenant, credential: ProviderCredential, api_key: str | None = None,
                      name: str | None = None, enabled: bool | None = None) -> ProviderCredential:
    _ensure_writable(credential.provider)
    if api_key is not None:
        credential.set_secret(_validate_secret(api_key))
    if name is not None:
        credential.name = name
    if enabled is not None:
        credential.enabled = enabled
    credential.save()
    return credential


def credential_reencrypt(*, credential: ProviderCredential) -> bool:
    """Re-encrypt under the primary ENCRYPTION_KEY (after a key rotation). False for environment keys."""
    if credential.source == Source.ENVIRONMENT or not credential.encrypted_key:
        return False
    credential.encrypted_key = crypto.rotate(credential.encrypted_key)
    credential.save(update_fields=["encrypted_key"])
    return True


def model_entry_save(*, entry: ModelEntry) -> ModelEntry:
    entry.full_clean()
    entry.save()
    return entry


def tenant_config_save(*, tenant, instance):
    """Create a tenant's own VirtualModel or ModelRoute, or update one reached with `for_write=True`."""
    if instance.pk is None:
        instance.tenant = tenant
    instance.full_clean()
    instance.save()
    return instance


def tenant_config_delete(*, tenant, instance) -> None:
    instance.delete()
