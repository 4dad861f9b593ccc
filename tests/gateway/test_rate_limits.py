"""Rate limits are exact across server processes (Redis), with OpenAI's headers and 429s."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.conftest import ServerProcess, reseed_catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def key(django_db_setup, django_db_blocker):
    from apps.providers.models import ModelEntry
    from apps.tenants.models import Tenant
    from tests import factories

    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="rl-tenant").delete()
        if not ModelEntry.objects.filter(provider__isnull=True).exists():
            reseed_catalogue()
        _, secret = factories.api_key(factories.tenant("rl-tenant"))
    yield secret
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="rl-tenant").delete()


async def fire(servers, secret, n, body):
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*[
            client.post(f"{servers[i % 2].url}/v1/chat/completions", json=body,
                        headers={"Authorization": f"Bearer {secret}"}) for i in range(n)])


def test_requests_per_minute_shared_by_two_processes(key):
    env = {"RATE_LIMIT_PER_MINUTE": "10", "BURST_ALLOWANCE": "0"}
    servers = [ServerProcess(env=env).start(), ServerProcess(env=env).start()]
    try:
        body = {"model": "simulated-echo", "messages": [{"role": "user", "content": "hi"}]}
        responses = asyncio.run(fire(servers, key, 30, body))
    finally:
        for server in servers:
            server.stop()
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) == 10 and len(limited) == 20
    assert all(r.json()["error"]["code"] == "rate_limit_exceeded" for r in limited)
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert all(r.headers["x-ratelimit-limit-requests"] == "10" for r in ok + limited)
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in ok)
    assert remaining == list(range(10))  # each admitted request saw one fewer left
    assert all(r.headers["x-ratelimit-reset-requests"] for r in ok)


def test_headers_state_the_per_minute_limit_while_the_burst_lets_a_spike_through(key):
    """RATE_LIMIT_PER_MINUTE=60 with BURST_ALLOWANCE=20: a spike of 80 gets through, but every response says the
    limit is 60 and what is left of those 60, never 80."""
    server = ServerProcess(env={"RATE_LIMIT_PER_MINUTE": "60", "BURST_ALLOWANCE": "20"}).start()
    try:
        body = {"model": "simulated-echo", "messages": [{"role": "user", "content": "hi"}]}
        responses = asyncio.run(fire([server, server], key, 90, body))
    finally:
        server.stop()
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert 80 <= len(ok) <= 82 and len(ok) + len(limited) == 90  # the burst (+ a refill or two at 1/s)
    assert all(r.headers["x-ratelimit-limit-requests"] == "60" for r in ok + limited)
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in ok)
    assert remaining[-1] == 59 and remaining[0] == 0 and all(0 <= n <= 59 for n in remaining)
    assert all(r.json()["error"]["code"] == "rate_limit_exceeded" for r in limited)


def test_tokens_per_minute(key):
    server = ServerProcess(env={"RATE_LIMIT_TOKENS_PER_MINUTE": "100"}).start()
    try:
        big = {"model": "simulated-echo", "max_tokens": 90, "messages": [{"role": "user", "content": "hi"}]}
        first = httpx.post(f"{server.url}/v1/chat/completions", json=big, timeout=30,
                           headers={"Authorization": f"Bearer {key}"})
        assert first.status_code == 200 and first.headers["x-ratelimit-limit-tokens"] == "100"
        small = {**big, "max_tokens": 1}
        second = httpx.post(f"{server.url}/v1/chat/completions", json=small, timeout=30,
                            headers={"Authorization": f"Bearer {key}"})
        # The first request reserved its estimate (prompt + 90) and was settled to its real, much smaller usage:
        # without that refund fewer than 10 tokens would be left here.
        assert second.status_code == 200
        assert int(second.headers["x-ratelimit-remaining-tokens"]) > 50
        too_big = {**big, "max_tokens": 500}
        refused = httpx.post(f"{server.url}/v1/chat/completions", json=too_big, timeout=30,
                             headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert "token" in refused.json()["error"]["message"].lower()
    finally:
        server.stop()


def test_no_limits_configured_means_no_headers(key):
    server = ServerProcess().start()
    try:
        response = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                              headers={"Authorization": f"Bearer {key}"},
                              json={"model": "simulated-echo", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200 and "x-ratelimit-limit-requests" not in response.headers
    finally:
        server.stop()


def test_per_key_and_per_tenant_limits_from_the_admin_fields(key, django_db_blocker):
    from apps.tenants.models import ApiKey, Tenant
    from tests import factories
    from tests.conftest import committed

    tenant = Tenant.objects.get(slug="rl-tenant")
    _, tight_secret = committed(lambda: factories.api_key(tenant, name="tight", limits={"rate_limit_rpm": 2}))
    server = ServerProcess().start()
    body = {"model": "simulated-echo", "messages": [{"role": "user", "content": "hi"}]}
    try:
        statuses = [httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30,
                               headers={"Authorization": f"Bearer {tight_secret}"}).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]  # the key's own limit, not the (unlimited) default
        def set_tenant_limit(value):
            fresh = Tenant.objects.get(pk=tenant.pk)
            fresh.rate_limit_rpm = value
            fresh.save()  # a save, so gateways are told to reload

        committed(set_tenant_limit, 3)
        time.sleep(1)  # the snapshot reloads
        statuses = [httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30,
                               headers={"Authorization": f"Bearer {key}"}).status_code for _ in range(5)]
        assert statuses.count(200) == 3  # the tenant's bucket is shared by all its keys
    finally:
        server.stop()
        committed(lambda: ApiKey.objects.filter(name="tight").delete())
        committed(set_tenant_limit, None)
