import pytest

from apps.core.config_version import REDIS_KEY
from tests import factories


@pytest.mark.django_db(transaction=True)
def test_config_writes_bump_the_version_after_commit(redis_client):
    assert redis_client.get(REDIS_KEY) is None
    tenant = factories.tenant()
    after_tenant = int(redis_client.get(REDIS_KEY))
    provider = factories.provider(tenant)
    factories.credential(provider)
    assert int(redis_client.get(REDIS_KEY)) > after_tenant
    before = int(redis_client.get(REDIS_KEY))
    provider.delete()
    assert int(redis_client.get(REDIS_KEY)) > before


@pytest.mark.django_db
def test_no_bump_when_the_transaction_rolls_back(redis_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        factories.tenant()
    assert callbacks  # queued for commit, not run
    assert redis_client.get(REDIS_KEY) is None
