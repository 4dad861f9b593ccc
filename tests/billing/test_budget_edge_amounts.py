"""Issue 8 item 2: every amount settles (zero, negative refunds, huge, sub-unit), and a script or data error
fails only its own call: it never makes a process stop using Redis for its budgets. Against real Redis, and
end to end through a real gateway: a zero-cost request of one tenant must not cost another tenant its
budgeted requests."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis
from django.conf import settings

from apps.billing.budget_outcomes import Refusal, Reservation
from apps.billing.budget_spec import BudgetSpec
from apps.billing.budget_store_memory import LocalBudget
from apps.billing.budget_store_redis import RedisBudget
from apps.billing.money import MAX_UNITS, from_units
from tests.conftest import committed
from tests.fakes.openai import FakeOpenAI

D = Decimal


async def zero(spec, period_start) -> Decimal:
    return D(0)


def spec(id_=1, **kwargs) -> BudgetSpec:
    return BudgetSpec(id=id_, limit=kwargs.pop("limit", D(100)), period=kwargs.pop("period", "monthly"),
                      action=kwargs.pop("action", "block"), tenant_id=kwargs.pop("tenant_id", 1), **kwargs)


def run(kind: str, scenario):
    async def main():
        if kind == "local":
            return await scenario(LocalBudget(load_used=zero))
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            return await scenario(RedisBudget(client, load_used=zero))
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture(params=["redis", "local"])
def kind(request) -> str:
    return request.param


@pytest.mark.parametrize(("reserve", "actual", "used"), [
    ("0", "0", "0"),  # an Ollama model, a zero-priced entry: the reservation and the cost are both zero
    ("0", "0.000002", "0.000002"),  # nothing reserved (a free worst case), something spent
    ("0.5", "0", "0"),  # reserved, then nothing served worth billing
    ("0.5", "-0.25", "-0.25"),  # a refund
    ("0", "-0.0000000001", "0"),  # a sub-unit refund rounds towards zero (never under-counts)
    ("0.0000000001", "0.0000000004", "0.000000001"),  # sub-unit amounts round up to a nano-dollar
    ("1", "1e20", str(from_units(MAX_UNITS))),  # absurdly large: capped, still settles, no overflow
])
def test_every_amount_settles(kind, reserve, actual, used):
    budget = spec(action="notify")  # notify: a huge figure must not be refused at reserve time

    async def scenario(engine):
        reservation = await engine.reserve([budget], amount=D(reserve), request_id="r")
        assert isinstance(reservation, Reservation) and reservation.entries
        settled = await engine.settle(reservation, actual=D(actual))
        assert settled.settled
        state = await engine.counter(budget)
        assert (state.used, state.reserved) == (D(used), D(0))
        assert not (await engine.settle(reservation, actual=D(actual))).settled  # once per request
        # The store is still answering: the next request is booked normally.
        after = await engine.reserve([budget], amount=D("0.1"), request_id="next")
        assert isinstance(after, Reservation) and after.entries
        return True

    assert run(kind, scenario)


def test_releasing_a_zero_reservation_and_expiring_one_work(kind):
    budget = spec(limit=D(1))

    async def scenario(engine):
        free = await engine.reserve([budget], amount=D(0), request_id="free")
        assert await engine.release(free)
        state = await engine.counter(budget)
        assert (state.used, state.reserved) == (D(0), D(0))
        return True

    assert run(kind, scenario)


def test_a_script_error_fails_only_its_call_and_never_backs_off(caplog):
    """A data error (here a counter key of the wrong type) is logged as an error; the store keeps using Redis
    for every other budget at once, unlike a connection failure."""

    async def scenario():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        engine = RedisBudget(client, load_used=zero)
        try:
            broken, healthy = spec(1, tenant_id=7), spec(2, tenant_id=8)
            await client.set(engine.entry(broken).key, "not a hash")
            failed = await engine.reserve([broken], amount=D("0.1"), request_id="a")
            assert isinstance(failed, Refusal) and failed.code == "budget_unavailable"
            assert not engine.backoff.down
            fine = await engine.reserve([healthy], amount=D("0.1"), request_id="b")
            assert isinstance(fine, Reservation) and fine.entries
            assert (await engine.settle(fine, actual=D(0))).settled
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert "was refused" in caplog.text and "WRONGTYPE" in caplog.text


# ---- end to end: a real gateway -------------------------------------------------------------------------

@pytest.fixture
def two_budgeted_tenants(transactional_db, catalogue):
    from apps.billing.models import Budget
    from apps.providers.models import ModelEntry
    from tests import factories

    fake = FakeOpenAI().start()

    def create():
        a, _, secret_a = factories.tenant_on_fake_openai("zero-a", fake, provider_slug="zero-a-openai")
        b, _, secret_b = factories.tenant_on_fake_openai("zero-b", fake, provider_slug="zero-b-openai")
        ModelEntry.objects.create(model_id="free-chat", provider_type="openai", provider=a.providers.get(),
                                  input_price=0, output_price=0)
        for tenant in (a, b):
            Budget.objects.create(tenant=tenant, limit=D(100), period="monthly", action="block")
        return secret_a, secret_b

    secret_a, secret_b = committed(create)
    yield fake, secret_a, secret_b
    fake.stop()


def test_a_zero_cost_request_does_not_cost_other_tenants_their_budgeted_requests(server_factory,
                                                                               two_budgeted_tenants):
    _, secret_a, secret_b = two_budgeted_tenants
    server = server_factory()
    time.sleep(1)  # the snapshot holds both budgets

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            statuses = []
            for round_ in range(3):
                free = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {secret_a}"},
                                         json={"model": "free-chat", "messages": [{"role": "user", "content": "x"}]})
                assert free.status_code == 200, free.text
                burst = await asyncio.gather(*[
                    client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {secret_b}"},
                                json={"model": "gpt-4o", "max_tokens": 10,
                                      "messages": [{"role": "user", "content": f"paid {round_} {i}"}]})
                    for i in range(10)])
                statuses += [(r.status_code, r.json().get("error", {}).get("code")) for r in burst]
            return statuses

    statuses = asyncio.run(scenario())
    assert statuses == [(200, None)] * 30, [s for s in statuses if s[0] != 200][:3]
