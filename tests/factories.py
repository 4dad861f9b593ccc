"""Test data made through the services users' actions go through."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from apps.providers import services as provider_services
from apps.tenants import services as tenant_services
from apps.tenants.models import Membership

_seq = itertools.count(1)


def tenant(slug: str | None = None, **kwargs):
    return tenant_services.tenant_create(slug=slug or f"tenant-{next(_seq)}", **kwargs)


def api_key(tenant_obj, *, scopes=("inference",), **kwargs):
    return tenant_services.api_key_create(tenant=tenant_obj, name=kwargs.pop("name", "test"), scopes=list(scopes),
                                          **kwargs)


def user(username: str | None = None, *, tenant_obj=None, role=Membership.Role.MEMBER, **kwargs):
    User = get_user_model()
    created = User.objects.create_user(username or f"user-{next(_seq)}", password="pw", **kwargs)
    if tenant_obj is not None:
        tenant_services.membership_set(tenant=tenant_obj, user=created, role=role)
    return created


def provider(tenant_obj=None, *, type="openai", **kwargs):
    slug = kwargs.pop("slug", f"prov-{next(_seq)}")
    return provider_services.provider_create(tenant=tenant_obj, slug=slug, name=kwargs.pop("name", slug),
                                             type=type, **kwargs)


def credential(provider_obj, api_key_value: str = "sk-test-secret-value-1234", **kwargs):
    return provider_services.credential_create(tenant=provider_obj.tenant, provider=provider_obj,
                                               api_key=api_key_value, **kwargs)


def api_client(secret: str):
    """The management API as a key holder calls it."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def admin_api(slug: str):
    """A new tenant and an API client holding one of its admin-scoped keys."""
    created = tenant(slug)
    _, secret = api_key(created, scopes=["admin"])
    return created, api_client(secret)


def tenant_on_fake_openai(slug: str, fake, *, provider_slug: str, **key_fields):
    """A fresh tenant (an older one of that slug removed), its key, and its own OpenAI provider pointing at a
    fake upstream, with the catalogue present. Returns (tenant, key, secret). For module-scoped fixtures."""
    from apps.providers.models import ModelEntry
    from apps.tenants.models import Tenant
    from tests.conftest import reseed_catalogue

    Tenant.objects.filter(slug=slug).delete()
    if not ModelEntry.objects.filter(provider__isnull=True).exists():
        reseed_catalogue()
    created = tenant(slug)
    key, secret = api_key(created, **key_fields)
    upstream = provider(created, slug=provider_slug, base_url=f"{fake.url}/v1")
    credential(upstream, api_key_value=fake.api_key)
    return created, key, secret
