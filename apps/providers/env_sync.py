"""Providers configured by environment variables, mirrored as read-only global rows.

The rows carry names, URLs and masked hints so the admin and API can show them; the secrets
stay in the process environment and are looked up by variable name when a request needs them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from apps.core.crypto import mask

from .models import Provider, ProviderCredential, ProviderType, Source

SIMULATED_SLUG = "simulated"


@transaction.atomic
def providers_sync_from_env() -> list[Provider]:
    """Upsert one global provider per configured environment provider; disable those no longer configured."""
    synced: list[Provider] = []
    wanted = list(settings.ENV_PROVIDERS)
    for spec in wanted:
        provider, _ = Provider.objects.update_or_create(
            tenant=None,
            slug=spec.slug,
            defaults={"name": spec.name, "type": spec.type, "base_url": spec.base_url, "enabled": True,
                      "options": dict(spec.options), "source": Source.ENVIRONMENT},
        )
        keep = []
        for env_var, secret in zip(spec.key_vars, spec.keys, strict=True):
            credential, _ = ProviderCredential.objects.update_or_create(
                provider=provider, env_var=env_var,
                defaults={"name": env_var, "hint": mask(secret), "enabled": True, "source": Source.ENVIRONMENT,
                          "encrypted_key": ""},
            )
            keep.append(credential.pk)
        provider.credentials.filter(source=Source.ENVIRONMENT).exclude(pk__in=keep).delete()
        synced.append(provider)
    if getattr(settings, "SIMULATED_PROVIDER", False):
        provider, _ = Provider.objects.update_or_create(
            tenant=None, slug=SIMULATED_SLUG,
            defaults={"name": "Simulated (built-in)", "type": ProviderType.SIMULATED, "base_url": "",
                      "enabled": True, "source": Source.ENVIRONMENT},
        )
        synced.append(provider)
    stale = Provider.objects.filter(tenant=None, source=Source.ENVIRONMENT, enabled=True).exclude(
        pk__in=[p.pk for p in synced]
    )
    for provider in stale:  # keep the row (usage may refer to it) but stop routing to it
        provider.enabled = False
        provider.save(update_fields=["enabled", "updated_at"])
    return synced
