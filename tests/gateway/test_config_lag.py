"""A configuration write that admits, refuses or limits holds for the very next request, in every process and
in every mode: the version is checked before each request is admitted (apps/gateway/runtime.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from decimal import Decimal

import httpx
import pytest

from apps.tenants import services as tenant_services
from tests import factories
from tests.billing import factories as billing_factories
from tests.conftest import ROOT, ServerProcess
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db(transaction=True)


def chat(server: ServerProcess, secret: str, model: str = "gpt-4o", **body) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"}, timeout=30,
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}], **body})


@pytest.fixture
def upstream():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def test_createapikey_in_the_embedded_default_works_at_once():
    with tempfile.TemporaryDirectory() as var:
        env = {"DATABASE_URL": "", "REDIS_URL": "", "CB_VAR_DIR": var}
        server = ServerProcess(settings_module="cbplatform.settings.local", env=env).start(timeout=90)
        try:
            assert chat(server, "not-needed", "simulated-echo").status_code == 200  # serving, snapshot loaded
            created = subprocess.run([sys.executable, "manage.py", "createapikey", "--tenant", "demo"], cwd=ROOT,
                                     env={**server.env}, capture_output=True, text=True, timeout=60, check=True)
            secret = created.stdout.strip().splitlines()[-1]
            assert secret.startswith("cb-")
            response = chat(server, secret, "simulated-echo")
            assert response.status_code == 200, response.text
        finally:
            server.stop()


def test_a_revoked_key_is_refused_by_every_process_on_the_very_next_request(server_factory, upstream, catalogue):
    tenant, key, secret = factories.tenant_on_fake_openai("lag-revoke", upstream, provider_slug="oai")
    servers = [server_factory(), server_factory()]
    assert [chat(s, secret).status_code for s in servers] == [200, 200]
    tenant_services.api_key_revoke(tenant=tenant, api_key=key)  # acknowledged: committed and version bumped
    for server in reversed(servers):
        response = chat(server, secret)
        assert response.status_code == 401 and response.json()["error"]["code"] == "api_key_revoked", response.text

    _, fresh = factories.api_key(tenant)
    assert [chat(s, fresh).status_code for s in servers] == [200, 200]


def test_a_key_revoked_meanwhile_is_refused_before_its_request_body_is_judged(server_factory, upstream, catalogue):
    """The chat handler reads its body while the version check is in flight (handlers.identified): a body error
    must still wait for the confirmed snapshot, which refuses the key first."""
    tenant, key, secret = factories.tenant_on_fake_openai("lag-order", upstream, provider_slug="oai")
    server = server_factory()

    def broken() -> httpx.Response:
        return httpx.post(f"{server.url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                          content=b'{"model": "gpt-4o", "messages": ', timeout=30)

    assert chat(server, secret).status_code == 200
    assert broken().status_code == 400
    tenant_services.api_key_revoke(tenant=tenant, api_key=key)
    response = broken()
    assert response.status_code == 401 and response.json()["error"]["code"] == "api_key_revoked", response.text


def test_a_new_budget_refuses_the_very_next_request_that_would_exceed_it(server_factory, upstream, catalogue):
    tenant, _, secret = factories.tenant_on_fake_openai("lag-budget", upstream, provider_slug="oai")
    servers = [server_factory(), server_factory()]
    assert [chat(s, secret, "gpt-4", max_tokens=100).status_code for s in servers] == [200, 200]
    billing_factories.budget(tenant, limit=Decimal("0.001"), action="block")
    for server in servers:
        response = chat(server, secret, "gpt-4", max_tokens=100)
        assert response.status_code == 429 and response.json()["error"]["code"] == "budget_exceeded", response.text


def test_a_disabled_provider_is_not_routed_to_on_the_very_next_request(server_factory, upstream, catalogue):
    from apps.providers import services as provider_services
    from apps.providers.models import Provider

    tenant, _, secret = factories.tenant_on_fake_openai("lag-provider", upstream, provider_slug="oai")
    server = server_factory()
    assert chat(server, secret).status_code == 200
    provider = Provider.objects.get(tenant=tenant, slug="oai")
    provider_services.provider_update(tenant=tenant, provider=provider, enabled=False)
    seen = len(upstream.requests)
    began = time.monotonic()
    response = chat(server, secret)
    assert response.status_code != 200 and len(upstream.requests) == seen, (response.status_code, response.text)
    assert time.monotonic() - began < 5


def test_a_provider_enabled_meanwhile_serves_the_very_next_request(server_factory, upstream, catalogue):
    """A plan that fails on the snapshot the process held (no usable provider) is made on the one the version
    check confirms, not answered."""
    from apps.providers import services as provider_services
    from apps.providers.models import Provider

    tenant, _, secret = factories.tenant_on_fake_openai("lag-enable", upstream, provider_slug="oai")
    server = server_factory()
    provider = Provider.objects.get(tenant=tenant, slug="oai")
    provider_services.provider_update(tenant=tenant, provider=provider, enabled=False)
    refused = chat(server, secret)
    assert refused.status_code != 200, refused.text
    provider_services.provider_update(tenant=tenant, provider=provider, enabled=True)
    for stream in (False, True):
        response = chat(server, secret, stream=stream)
        assert response.status_code == 200, response.text
        provider_services.provider_update(tenant=tenant, provider=provider, enabled=False)
        assert chat(server, secret).status_code != 200
        provider_services.provider_update(tenant=tenant, provider=provider, enabled=True)
