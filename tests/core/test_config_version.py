import pytest

from apps.core.config_version import REDIS_KEY
from tests.providers import factories as provider_factories
from tests.tenants import factories as tenant_factories


@pytest.mark.django_db(transaction=True)
def test_config_writes_bump_the_version_after_commit(redis_client):
    assert redis_client.get(REDIS_KEY) is None
    tenant = tenant_factories.tenant()
    after_tenant = redis_client.get(REDIS_KEY)
    assert after_tenant is not None
    provider = provider_factories.provider(tenant)
    provider_factories.credential(provider)
    assert redis_client.get(REDIS_KEY) != after_tenant
    before = redis_client.get(REDIS_KEY)
    provider.delete()
    assert redis_client.get(REDIS_KEY) != before


@pytest.mark.django_db(transaction=True)
def test_every_bump_is_a_new_value_even_after_redis_lost_the_key(redis_client):
    seen = set()
    for _ in range(3):
        tenant_factories.tenant()
        seen.add(redis_client.get(REDIS_KEY))
        redis_client.flushdb()  # what a Redis restart without persistence does
    assert len(seen) == 3


@pytest.mark.django_db
def test_no_bump_when_the_transaction_rolls_back(redis_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tenant_factories.tenant()
    assert callbacks  # queued for commit, not run
    assert redis_client.get(REDIS_KEY) is None
