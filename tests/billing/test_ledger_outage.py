"""Issue 8 item 7: usage survives a Redis outage. A real gateway on a Redis of the test's own (no persistence,
as a careless deployment runs it) keeps answering while that Redis is down; every answered request ends up as
exactly one UsageRecord once Redis is back (spooled on the web host, delivered, ingested)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from apps.billing.ingest import ingest_once
from apps.billing.ledger import check_persistence
from apps.billing.models import UsageRecord
from tests.conftest import committed
from tests.fakes.openai import FakeOpenAI

from .own_redis import OwnRedis


@pytest.fixture
def tenant_on_fake(transactional_db, catalogue):
    from tests import factories

    fake = FakeOpenAI().start()
    _, _, secret = committed(factories.tenant_on_fake_openai, "outage-t", fake, provider_slug="outage-openai")
    yield secret
    fake.stop()


def drain(redis) -> None:
    while ingest_once(client=redis):
        pass


def test_requests_answered_while_redis_is_down_are_all_recorded_once(server_factory, tenant_on_fake, tmp_path):
    own = OwnRedis().start()
    try:
        server = server_factory(env={"REDIS_URL": own.url, "LEDGER_SPOOL_DIR": str(tmp_path / "spool")})
        headers = {"Authorization": f"Bearer {tenant_on_fake}"}

        def chat(text: str) -> httpx.Response:
            return httpx.post(f"{server.url}/v1/chat/completions", headers=headers, timeout=30,
                              json={"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})

        before = [chat(f"before {i}") for i in range(3)]
        client = own.client()
        drain(client)  # what Redis held is in the ledger before it goes away (it keeps nothing over a restart)
        client.close()

        own.stop()
        during = [chat(f"during {i}") for i in range(10)]
        assert [r.status_code for r in during] == [200] * 10  # the gateway degrades: requests are served
        assert list((tmp_path / "spool").iterdir())  # … and their records wait on disk

        own.start()  # same port, empty: no AOF, nothing survived
        after = [chat(f"after {i}") for i in range(3)]
        answered = [r.headers["x-cb-request-id"] for r in before + during + after if r.status_code == 200]
        client = own.client()
        deadline = time.monotonic() + 30
        while True:
            drain(client)
            recorded = UsageRecord.objects.filter(request_id__in=answered).count()
            if recorded == len(answered) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        print(f"answered {len(answered)}, recorded {recorded}")
        assert recorded == len(answered) == 16
        assert not list((tmp_path / "spool").iterdir())  # delivered and removed
        assert "does not persist with AOF" in server.output()  # the start-up warning names the problem
        client.close()
    finally:
        own.stop()


@pytest.mark.parametrize(("args", "expected"), [
    ((), False),
    (("--appendonly", "yes"), True),
    (("--rename-command", "CONFIG", ""), None),  # managed Redis without CONFIG: tolerated
])
def test_the_persistence_check(args, expected, caplog):
    import redis.asyncio as aioredis

    own = OwnRedis(*args).start()

    async def check():
        client = aioredis.Redis(port=own.port)
        try:
            return await check_persistence(client)
        finally:
            await client.aclose()

    try:
        assert asyncio.run(check()) is expected
    finally:
        own.stop()
    assert ("does not persist with AOF" in caplog.text) is (expected is False)
