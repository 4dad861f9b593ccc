"""Tenants, users and API keys for tests, made through the services users' actions go through."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

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


def api_client(secret: str):
    """The management API as a key holder calls it."""
    from rest_framework.test import APIClient  # DRF's test client, only where a test asks for one

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def admin_api(slug: str):
    """A new tenant and an API client holding one of its admin-scoped keys."""
    created = tenant(slug)
    _, secret = api_key(created, scopes=["admin"])
    return created, api_client(secret)
