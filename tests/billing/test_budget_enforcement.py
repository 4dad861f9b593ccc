"""Budgets enforced by the gateway: 200 concurrent requests through two server processes at a budget that
fits 50 worst cases. Spend never passes the limit and every admitted request is served."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx
import pytest

from tests.conftest import ServerProcess, committed
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
BODY = {"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
INPUT, OUTPUT = Decimal("0.0000025"), Decimal("0.00001")  # gpt-4o list prices per token


@pytest.fixture(scope="module")
def setup(django_db_setup, django_db_blocker):
    from apps.tenants.models import Tenant
    from tests import factories

    fake = FakeOpenAI().start()
    with django_db_blocker.unblock():
        tenant, _, secret = factories.tenant_on_fake_openai("budget-t", fake, provider_slug="b-openai")
    yield {"fake": fake, "secret": secret, "tenant": tenant}
    fake.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="budget-t").delete()


def worst_case() -> Decimal:
    from apps.gateway.costs import worst_case_cost
    from apps.gateway.snapshot import build_snapshot

    model = next(m for m in build_snapshot(None).models if m.model_id == "gpt-4o" and m.provider_type == "openai")
    return worst_case_cost(BODY, model, 10)


async def fire(servers, secret, n):
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as client:
        return await asyncio.gather(*[
            client.post(f"{servers[i % 2].url}/v1/chat/completions", json=BODY,
                        headers={"Authorization": f"Bearer {secret}"}) for i in range(n)])


def test_concurrent_requests_never_overspend(setup):
    from apps.billing.models import Budget

    limit = committed(worst_case) * 50  # build_snapshot manages its own thread's connection
    committed(lambda: Budget.objects.create(tenant=setup["tenant"], limit=limit, period="monthly", action="block"))
    servers = [ServerProcess().start(), ServerProcess().start()]
    try:
        time.sleep(1)  # both snapshots hold the budget
        responses = asyncio.run(fire(servers, setup["secret"], 200))
    finally:
        for server in servers:
            server.stop()
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(served) >= 50, [r.text for r in refused[:3]]
    assert all(r.json()["choices"][0]["message"]["content"] == "[openai] You said: hi" for r in served)
    assert refused and all(r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded" for r in refused)
    assert "budget" in refused[0].json()["error"]["message"]
    spent = sum(r.json()["usage"]["prompt_tokens"] * INPUT + r.json()["usage"]["completion_tokens"] * OUTPUT
                for r in served)
    assert spent <= limit
    # the cap that makes the reservation a bound was sent upstream
    assert all(req["json"].get("max_tokens") == 10 for req in setup["fake"].requests[-len(served):])


def test_no_budget_means_no_cap_and_no_redis_work(setup):
    from apps.billing.models import Budget

    committed(lambda: Budget.objects.filter(tenant=setup["tenant"]).delete())
    server = ServerProcess().start()
    try:
        response = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                              headers={"Authorization": f"Bearer {setup['secret']}"},
                              json={"model": "gpt-4o", "messages": [{"role": "user", "content": "free"}]})
        assert response.status_code == 200
        assert "max_completion_tokens" not in setup["fake"].requests[-1]["json"]
    finally:
        server.stop()


def test_a_downgrade_budget_routes_to_the_cheapest_capable_model(setup):
    from apps.billing.models import Budget

    committed(lambda: Budget.objects.filter(tenant=setup["tenant"]).delete())
    committed(lambda: Budget.objects.create(tenant=setup["tenant"], limit=Decimal("100"), period="monthly",
                                            action="downgrade", downgrade_threshold=0))
    server = ServerProcess().start()
    try:
        time.sleep(1)
        headers = {"Authorization": f"Bearer {setup['secret']}"}
        response = httpx.post(f"{server.url}/v1/chat/completions", json=BODY, headers=headers, timeout=30)
        assert response.status_code == 200
        assert response.headers["x-cb-model"] != "gpt-4o"  # something cheaper served it
        assert "downgrade" in response.headers["x-cb-route"]
        tools = {**BODY, "tools": [{"type": "function", "function": {"name": "f"}}]}
        with_tools = httpx.post(f"{server.url}/v1/chat/completions", json=tools, headers=headers, timeout=30)
        assert with_tools.status_code == 200  # still a model with tools
        assert with_tools.json()["choices"][0]["message"]["tool_calls"]
    finally:
        server.stop()
        committed(lambda: Budget.objects.filter(tenant=setup["tenant"]).delete())
