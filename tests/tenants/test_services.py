from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.tenants.facade import key_hash
from apps.tenants.models import ApiKey
from apps.tenants.selectors import api_key_from_secret
from apps.tenants.services import api_key_revoke
from tests.tenants import factories as tenant_factories

pytestmark = pytest.mark.django_db


def test_key_is_shown_once_and_stored_as_hash():
    tenant = tenant_factories.tenant()
    key, secret = tenant_factories.api_key(tenant, name="ci")
    assert secret.startswith("cb-") and len(secret) > 40
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == key_hash(secret)
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().first())
    assert stored.hint == f"cb-…{secret[-4:]}"
    assert api_key_from_secret(secret) == key


def test_unknown_revoked_expired_and_inactive_keys_do_not_authenticate():
    tenant = tenant_factories.tenant()
    _, good = tenant_factories.api_key(tenant)
    assert api_key_from_secret(good) is not None
    assert api_key_from_secret("cb-unknown") is None
    assert api_key_from_secret("sk-not-ours") is None
    assert api_key_from_secret(None) is None

    revoked, secret = tenant_factories.api_key(tenant)
    api_key_revoke(tenant=tenant, api_key=revoked)
    assert revoked.revoked_at is not None and api_key_from_secret(secret) is None

    _, expiring = tenant_factories.api_key(tenant, expires_at=timezone.now() - timedelta(seconds=1))
    assert api_key_from_secret(expiring) is None

    tenant.is_active = False
    tenant.save()
    assert api_key_from_secret(good) is None


def test_revoke_refuses_another_tenants_key():
    key, _ = tenant_factories.api_key(tenant_factories.tenant())
    with pytest.raises(ApiKey.DoesNotExist):
        api_key_revoke(tenant=tenant_factories.tenant(), api_key=key)


def test_unknown_scope_is_a_validation_error():
    with pytest.raises(ValidationError, match="Unknown scope"):
        tenant_factories.api_key(tenant_factories.tenant(), scopes=["inference", "root"])


def test_tenant_slug_is_validated():
    with pytest.raises(ValidationError):
        tenant_factories.tenant("not a slug!")
    tenant_factories.tenant("acme")
    with pytest.raises(ValidationError):
        tenant_factories.tenant("acme")
