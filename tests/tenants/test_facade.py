"""The tenants facade: keys and tenants as the gateway reads them."""

import pytest

from apps.tenants import facade
from apps.tenants.models import ApiKey
from apps.tenants.services import api_key_revoke
from tests.tenants import factories as tenant_factories

pytestmark = pytest.mark.django_db


def test_key_info_by_hash_is_the_stored_key():
    tenant = tenant_factories.tenant()
    key, secret = tenant_factories.api_key(tenant, scopes=["inference", "admin"], user_label="alice")
    assert secret.startswith(facade.KEY_PREFIX)
    info = facade.key_info_by_hash(facade.key_hash(secret))
    assert info.id == key.id and info.tenant_id == tenant.id and info.scopes == {"inference", "admin"}
    assert info.user_label == "alice" and not info.revoked and info.limits == (None, None, None)
    assert facade.key_info_by_hash(facade.key_hash("cb-unknown")) is None

    api_key_revoke(tenant=tenant, api_key=key)
    assert facade.key_info_by_hash(ApiKey.objects.get(pk=key.pk).key_hash).revoked
    assert facade.key_infos()[key.key_hash].revoked


def test_tenant_infos_include_inactive_tenants():
    tenant = tenant_factories.tenant()
    tenant.is_active = False
    tenant.save()
    info = facade.tenant_infos()[tenant.id]
    assert info.slug == tenant.slug and info.active is False
