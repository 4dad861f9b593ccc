"""Providers and credentials for tests, made through the providers' services."""

from __future__ import annotations

import itertools

from apps.providers import services as provider_services
from apps.providers.models import ModelEntry
from apps.tenants.models import Tenant
from tests.tenants import factories as tenant_factories

_seq = itertools.count(1)


def provider(tenant_obj=None, *, type="openai", **kwargs):
    slug = kwargs.pop("slug", f"prov-{next(_seq)}")
    return provider_services.provider_create(tenant=tenant_obj, slug=slug, name=kwargs.pop("name", slug),
                                             type=type, **kwargs)


def credential(provider_obj, api_key_value: str = "sk-test-secret-value-1234", **kwargs):
    return provider_services.credential_create(tenant=provider_obj.tenant, provider=provider_obj,
                                               api_key=api_key_value, **kwargs)


def tenant_on_fake_openai(slug: str, fake, *, provider_slug: str, **key_fields):
    """A fresh tenant (an older one of that slug removed), its key, and its own OpenAI provider pointing at a
    fake upstream, with the catalogue present. Returns (tenant, key, secret). For module-scoped fixtures."""
    from tests.conftest import reseed_catalogue  # pytest owns conftest's loading; only this helper needs it

    Tenant.objects.filter(slug=slug).delete()
    if not ModelEntry.objects.filter(provider__isnull=True).exists():
        reseed_catalogue()
    created = tenant_factories.tenant(slug)
    key, secret = tenant_factories.api_key(created, **key_fields)
    upstream = provider(created, slug=provider_slug, base_url=f"{fake.url}/v1")
    credential(upstream, api_key_value=fake.api_key)
    return created, key, secret
