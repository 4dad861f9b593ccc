"""Concurrency limits of one gateway process, through real servers and many concurrent streams.

- No hidden cap: the upstream pool defaults to one connection per admitted request, so hundreds of concurrent
  streams all succeed.
- Waiting for a pooled connection is not the upstream's time: with a lowered CONNECTION_POOL_SIZE, the requests
  that never got a connection are a 503 naming the pool, never a 504 "upstream timeout".
- At MAX_CONCURRENT_REQUESTS, a fast 503 names the limit.
(`python -m bench.concurrency` drives 5,000 streams through two workers.)
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from tests.conftest import ServerProcess, reseed_catalogue
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db

HELD = "one two three four five six seven eight !slow 0.3"  # a stream of ~9 pieces, 0.3 s apart (~2.7 s)
BASE_ENV = {"CIRCUIT_FAILURE_THRESHOLD": "1000", "CIRCUIT_MIN_REQUESTS": "1000", "RETRY_BACKOFF_BASE_SECONDS": "0"}


@pytest.fixture(scope="module")
def setup(django_db_setup, django_db_blocker):
    from apps.providers import services
    from apps.tenants.models import Tenant
    from tests import factories

    fake = FakeOpenAI().start()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="cc-tenant").delete()
        from apps.providers.models import ModelEntry

        if not ModelEntry.objects.filter(provider__isnull=True).exists():
            reseed_catalogue()
        tenant = factories.tenant("cc-tenant")
        _, key = factories.api_key(tenant)
        provider = services.provider_create(tenant=tenant, slug="cc-openai", name="CC", type="openai",
                                            base_url=f"{fake.url}/v1")
        services.credential_create(tenant=tenant, provider=provider, api_key=fake.api_key)
    yield {"fake": fake, "key": key}
    fake.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="cc-tenant").delete()


async def one_stream(client: httpx.AsyncClient, server: ServerProcess, key: str, text: str) -> dict:
    began = time.perf_counter()
    async with client.stream("POST", f"{server.url}/v1/chat/completions",
                             headers={"Authorization": f"Bearer {key}"},
                             json={"model": "gpt-4o", "stream": True,
                                   "messages": [{"role": "user", "content": text}]}) as response:
        body = await response.aread()
    result = {"status": response.status_code, "seconds": time.perf_counter() - began, "body": body.decode()}
    if response.status_code != 200:
        result["error"] = orjson.loads(body)["error"]
    return result


@pytest.fixture
def start_server():
    """`manage.py serve` processes, stopped after the test (module data stays: no transactional flush)."""
    started: list[ServerProcess] = []

    def start(env: dict) -> ServerProcess:
        started.append(ServerProcess(env={**BASE_ENV, **env}).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


def streams(server: ServerProcess, key: str, count: int, text: str = HELD) -> list[dict]:
    async def run():
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.gather(*(one_stream(client, server, key, text) for _ in range(count)))

    return asyncio.run(run())


def test_hundreds_of_concurrent_streams_all_succeed_on_default_settings(setup, start_server):
    # 300 streams of ~1.5 s and a 3 s deadline: a pool of 100 (the old default) made two thirds of them wait
    # past the deadline.
    server = start_server({"REQUEST_TIMEOUT_SECONDS": "3"})
    results = streams(server, setup["key"], 300, "one two three four !slow 0.3")
    failures = [r for r in results if r["status"] != 200 or '"error"' in r["body"]]
    assert failures == []
    assert all(r["body"].endswith("data: [DONE]\n\n") for r in results)


def test_waiting_for_a_pooled_connection_is_a_503_naming_the_pool_not_an_upstream_timeout(setup, start_server):
    server = start_server({"CONNECTION_POOL_SIZE": "10", "REQUEST_TIMEOUT_SECONDS": "2"})
    results = streams(server, setup["key"], 30)
    ok = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] != 200]
    assert all('"error"' not in r["body"] and r["body"].endswith("data: [DONE]\n\n") for r in ok)
    assert len(ok) >= 10  # the pool's connections were used to the full
    assert refused, "with 30 streams of ~2.7 s on 10 connections and a 2 s deadline, some must wait too long"
    for r in refused:
        assert r["status"] == 503 and r["error"]["code"] == "connection_pool_exhausted", r
        assert "CONNECTION_POOL_SIZE" in r["error"]["message"]
        assert r["seconds"] < 4
    # The deployment was not blamed for our pool: it still answers at once.
    after = streams(server, setup["key"], 1, "hello")[0]
    assert after["status"] == 200


def test_at_max_concurrent_requests_a_fast_503_names_the_limit(setup, start_server):
    server = start_server({"MAX_CONCURRENT_REQUESTS": "5"})
    results = streams(server, setup["key"], 12)
    ok = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] != 200]
    assert len(ok) >= 5 and refused
    for r in refused:
        assert r["status"] == 503 and r["error"]["code"] == "overloaded"
        assert "MAX_CONCURRENT_REQUESTS=5" in r["error"]["message"]
        assert r["seconds"] < 1.5  # refused at once, not after waiting
