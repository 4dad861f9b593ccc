"""The budget engine against real Redis (and its in-process twin): reserve, settle, release, expiry, rebuild."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from apps.billing import services
from apps.billing.budget_bridge import load_used_from_ledger, record_alerts
from apps.billing.budget_outcomes import Refusal, Reservation
from apps.billing.budget_spec import BudgetSpec, spec_from_budget
from apps.billing.budget_store_memory import LocalBudget
from apps.billing.budget_store_redis import RedisBudget
from apps.billing.models import BudgetAlert
from apps.billing.periods import period_bounds
from apps.billing.selectors import budget_spent
from tests import factories
from tests.billing import factories as billing_factories
from tests.conftest import free_port

D = Decimal


async def zero(spec, period_start) -> Decimal:
    return D(0)


def spec(id_=1, **kwargs) -> BudgetSpec:
    return BudgetSpec(id=id_, limit=kwargs.pop("limit", D(1)), period=kwargs.pop("period", "monthly"),
                      action=kwargs.pop("action", "block"), **kwargs)


def new_client() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.REDIS_URL)


def run(kind: str, scenario, **engine_kwargs):
    """Run `scenario(engine)` on a fresh event loop with an engine of `kind` ("redis" or "local")."""
    engine_kwargs.setdefault("load_used", zero)

    async def main():
        if kind == "local":
            engine = LocalBudget(**engine_kwargs)
            try:
                return await scenario(engine)
            finally:
                await engine.close()
        client = new_client()
        try:
            return await scenario(RedisBudget(client, **engine_kwargs))
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture(params=["redis", "local"])
def kind(request) -> str:
    return request.param


def test_reserve_settle_release_math(kind):
    budget = spec(limit=D("1.00"))

    async def scenario(engine):
        first = await engine.reserve([budget], amount=D("0.300000001"), request_id="a")
        second = await engine.reserve([budget], amount=D("0.6"), request_id="b")
        assert isinstance(first, Reservation) and isinstance(second, Reservation)
        state = await engine.counter(budget)
        assert (state.used, state.reserved) == (D(0), D("0.900000001"))
        # 0.099999999 left: 0.1 does not fit, 0.099999999 does.
        refused = await engine.reserve([budget], amount=D("0.1"), request_id="c")
        assert isinstance(refused, Refusal) and refused.status == 429 and refused.code == "budget_exceeded"
        assert refused.reserved == D("0.900000001") and refused.used == D(0)
        assert "budget 1 (tenant, monthly)" in refused.message and "$0.9" in refused.message
        assert refused.retry_after and refused.error_fields()["headers"]["retry-after"] == str(refused.retry_after)
        exact = await engine.reserve([budget], amount=D("0.099999999"), request_id="d")
        assert isinstance(exact, Reservation)

        settled = await engine.settle(first, actual=D("0.123456789"))
        assert settled.settled
        await engine.release(second)
        state = await engine.counter(budget)
        assert state.used == D("0.123456789") and state.reserved == D("0.099999999")
        await engine.settle(exact, actual=D("0.0000000001"))  # sub-nano rounds up to one nano-dollar
        state = await engine.counter(budget)
        assert state.used == D("0.123456790") and state.reserved == D(0)

    run(kind, scenario)


def test_settle_is_idempotent_and_release_after_settle_does_nothing(kind):
    budget = spec(limit=D(10))

    async def scenario(engine):
        reservation = await engine.reserve([budget], amount=D(2), request_id="req-1")
        assert (await engine.settle(reservation, actual=D("1.5"))).settled
        assert not (await engine.settle(reservation, actual=D("1.5"))).settled
        assert not await engine.release(reservation)
        state = await engine.counter(budget)
        assert (state.used, state.reserved) == (D("1.5"), D(0))
        # Reserving again under a finished request id books nothing.
        again = await engine.reserve([budget], amount=D(2), request_id="req-1")
        assert isinstance(again, Reservation)
        assert (await engine.counter(budget)).reserved == D(0)
        # Released first: the settle that follows is ignored too.
        other = await engine.reserve([budget], amount=D(3), request_id="req-2")
        assert await engine.release(other)
        assert not await engine.release(other)
        assert not (await engine.settle(other, actual=D(3))).settled
        state = await engine.counter(budget)
        assert (state.used, state.reserved) == (D("1.5"), D(0))

    run(kind, scenario)


def test_one_reservation_covers_every_applicable_budget_atomically(kind):
    tenant_wide = spec(1, limit=D(10))
    user = spec(2, limit=D(1), user_label="alice")
    notify = spec(3, limit=D("0.5"), action="notify")
    downgrade = spec(4, limit=D(1), action="downgrade", downgrade_threshold=D(50))

    async def scenario(engine):
        specs = [tenant_wide, user, notify, downgrade]
        first = await engine.reserve(specs, amount=D("0.6"), request_id="one")
        assert isinstance(first, Reservation) and not first.downgrade_wanted
        # The user budget refuses: nothing is booked on any of the four.
        refused = await engine.reserve(specs, amount=D("0.5"), request_id="two")
        assert isinstance(refused, Refusal) and refused.spec == user
        assert "user 'alice'" in refused.message
        for s in specs:
            assert (await engine.counter(s)).reserved == D("0.6")
        # The notify budget is past its limit and never refuses; the downgrade one (at 60 % ≥ 50 %) asks for it.
        third = await engine.reserve([tenant_wide, notify, downgrade], amount=D(1), request_id="three")
        assert isinstance(third, Reservation)
        assert third.downgrade == [downgrade]
        await engine.settle(first, actual=D("0.5"))
        await engine.settle(third, actual=D("0.25"))
        assert (await engine.counter(tenant_wide)).used == D("0.75")
        assert (await engine.counter(user)).used == D("0.5")
        assert (await engine.counter(notify)).used == D("0.75")

    run(kind, scenario)


def test_a_request_dearer_than_the_whole_limit_says_so(kind):
    async def scenario(engine):
        refused = await engine.reserve([spec(limit=D(1), period="total")], amount=D(2), request_id="x")
        assert isinstance(refused, Refusal)
        assert "more than the whole limit" in refused.message and refused.retry_after is None

    run(kind, scenario)


def test_reservations_expire(kind):
    budget = spec(limit=D(1))

    async def scenario(engine):
        held = await engine.reserve([budget], amount=D("0.8"), request_id="crashed")
        assert isinstance(held, Reservation)
        assert isinstance(await engine.reserve([budget], amount=D("0.5"), request_id="blocked"), Refusal)
        await asyncio.sleep(0.35)  # the process holding "crashed" never came back
        later = await engine.reserve([budget], amount=D("0.5"), request_id="later")
        assert isinstance(later, Reservation)
        assert (await engine.counter(budget)).reserved == D("0.5")
        # The slow request did finish after all: its real cost counts, its expired reservation is not subtracted twice.
        assert (await engine.settle(held, actual=D("0.1"))).settled
        state = await engine.counter(budget)
        assert (state.used, state.reserved) == (D("0.1"), D("0.5"))

    run(kind, scenario, reservation_ttl=0.25)


def test_counters_are_per_period(kind):
    budget = spec(limit=D(1), period="daily")
    _, midnight = period_bounds("daily")  # today's periods (a past period's counter would expire at once)
    day_one, day_two = midnight - timedelta(minutes=1), midnight + timedelta(minutes=1)

    async def scenario(engine):
        late = await engine.reserve([budget], amount=D(1), request_id="late", now=day_one)
        assert isinstance(late, Reservation)
        assert isinstance(await engine.reserve([budget], amount=D("0.1"), request_id="same-day", now=day_one),
                          Refusal)
        assert isinstance(await engine.reserve([budget], amount=D(1), request_id="next-day", now=day_two),
                          Reservation)
        # Settled after midnight, the request still counts in the period it started in (as the ledger does).
        await engine.settle(late, actual=D("0.4"))
        assert (await engine.counter(budget, now=day_one)).used == D("0.4")
        assert (await engine.counter(budget, now=day_two)).used == D(0)

    run(kind, scenario)


def test_alerts_are_reported_once_per_threshold(kind):
    budget = spec(limit=D(10), action="notify", alert_thresholds=(50, 80, 95))

    async def scenario(engine):
        crossed = []
        for i, cost in enumerate(["4", "1", "3.5", "1", "0.5"]):
            reservation = await engine.reserve([budget], amount=D(cost), request_id=f"r{i}")
            settlement = await engine.settle(reservation, actual=D(cost))
            crossed.append([(a.threshold, a.spent) for a in settlement.alerts])
        return crossed

    assert run(kind, scenario) == [[], [(50, D(5))], [(80, D("8.5"))], [(95, D("9.5"))], []]


def test_exactly_the_budget_is_admitted_under_concurrency():
    """200 concurrent reservations from two engines (two threads, two event loops, two Redis connections)
    at a budget that fits exactly 50: exactly 50 are admitted, the counter never passes the limit, and the
    settled total is exact."""
    budget = spec(77, limit=D("1.00"), period="monthly")
    amount, actual = D("0.02"), D("0.0137")
    peak = {"value": D(0)}
    results: dict[str, list] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    ledger_queries = []

    async def slow_ledger(spec_, period_start) -> Decimal:
        ledger_queries.append(period_start)
        await asyncio.sleep(0.01)  # every caller finds the counter missing and rebuilds at once
        return D(0)

    def worker(name: str):
        async def main():
            client = new_client()
            engine = RedisBudget(client, load_used=slow_ledger)
            try:
                barrier.wait()
                outcomes = await asyncio.gather(*(
                    engine.reserve([budget], amount=amount, request_id=f"{name}-{i}") for i in range(100)))
                results[name] = outcomes
            finally:
                await client.aclose()

        asyncio.run(main())

    async def watch(stop: threading.Event):
        client = new_client()
        engine = RedisBudget(client, load_used=zero)
        try:
            while not stop.is_set():
                state = await engine.counter(budget)
                if state is not None:
                    peak["value"] = max(peak["value"], state.used + state.reserved)
                await asyncio.sleep(0.001)
        finally:
            await client.aclose()

    stop = threading.Event()
    watcher = threading.Thread(target=lambda: asyncio.run(watch(stop)))
    watcher.start()
    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stop.set()
    watcher.join(10)

    outcomes = results["a"] + results["b"]
    admitted = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, Refusal)]
    assert len(outcomes) == 200
    assert len(admitted) == 50 and len(refused) == 150
    assert {o.code for o in refused} == {"budget_exceeded"}
    assert peak["value"] <= budget.limit
    assert 1 <= len(ledger_queries) <= 2  # concurrent rebuilds in one process share one ledger query

    async def settle_all():
        client = new_client()
        engine = RedisBudget(client, load_used=zero)
        try:
            state = await engine.counter(budget)
            assert (state.used, state.reserved) == (D(0), D("1.00"))
            await asyncio.gather(*(engine.settle(r, actual=actual) for r in admitted))
            await asyncio.gather(*(engine.settle(r, actual=actual) for r in admitted))  # retried: no effect
            return await engine.counter(budget)
        finally:
            await client.aclose()

    final = asyncio.run(settle_all())
    assert final.used == actual * 50 == D("0.685")
    assert final.reserved == D(0)


def test_two_engines_share_one_counter():
    budget = spec(5, limit=D(1))

    async def scenario():
        one, two = new_client(), new_client()
        a, b = RedisBudget(one, load_used=zero), RedisBudget(two, load_used=zero)
        try:
            held = await a.reserve([budget], amount=D("0.7"), request_id="p1")
            assert isinstance(await b.reserve([budget], amount=D("0.7"), request_id="p2"), Refusal)
            await b.settle(held, actual=D("0.2"))  # another process may settle what this one reserved
            assert isinstance(await b.reserve([budget], amount=D("0.7"), request_id="p3"), Reservation)
        finally:
            await one.aclose()
            await two.aclose()

    asyncio.run(scenario())


# ---- failure policy -------------------------------------------------------------------------------------

def down_redis() -> aioredis.Redis:
    """A client of a Redis that is not there (no client-side retries, so the test does not wait on backoff)."""
    return aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2,
                          retry=Retry(NoBackoff(), 0))


def test_when_redis_is_down_block_budgets_refuse_with_503_and_others_pass(caplog):
    async def scenario():
        client = down_redis()
        engine = RedisBudget(client, load_used=zero)
        try:
            refusal = await engine.reserve([spec(1), spec(2, action="notify")], amount=D("0.1"), request_id="q")
            assert isinstance(refusal, Refusal)
            assert (refusal.status, refusal.code, refusal.retry_after) == (503, "budget_unavailable", 1)
            passed = await engine.reserve([spec(2, action="notify"), spec(3, action="downgrade")], amount=D("0.1"),
                                          request_id="r")
            assert isinstance(passed, Reservation) and len(passed.skipped) == 2 and not passed.entries
            assert not (await engine.settle(passed, actual=D("0.1"))).settled  # nothing to settle, no exception
            held = Reservation("s", D(1), [engine.entry(spec(1), datetime.now(UTC))])
            assert not (await engine.settle(held, actual=D(1))).settled
            assert not await engine.release(held)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert "budget counters: Redis reserve failed" in caplog.text


def test_fail_open_setting_lets_block_budgets_through(settings):
    settings.BUDGET_FAIL_OPEN = True

    async def scenario():
        client = down_redis()
        try:
            outcome = await RedisBudget(client, load_used=zero).reserve([spec(1)], amount=D(1), request_id="q")
            assert isinstance(outcome, Reservation) and outcome.skipped == [spec(1)]
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_a_ledger_that_cannot_answer_refuses_block_budgets_only(kind):
    async def broken(spec_, period_start):
        raise OSError("database is down")

    async def scenario(engine):
        refused = await engine.reserve([spec(1), spec(2, action="notify")], amount=D("0.1"), request_id="a")
        assert isinstance(refused, Refusal) and refused.status == 503
        passed = await engine.reserve([spec(2, action="notify")], amount=D("0.1"), request_id="b")
        assert isinstance(passed, Reservation) and passed.skipped == [spec(2, action="notify")]

    run(kind, scenario, load_used=broken)


# ---- rebuild from the ledger ----------------------------------------------------------------------------

usage = billing_factories.usage_record


@pytest.mark.django_db(transaction=True)
def test_counters_are_rebuilt_from_the_ledger(kind):
    tenant, other = factories.tenant(), factories.tenant()
    budget = services.budget_create(tenant=tenant, user_label="alice", model="gpt-4o", limit=D(10),
                                    period="monthly")
    start, _ = period_bounds("monthly")
    usage(tenant, cost="1.25", user_label="alice", model_served="gpt-4o")
    usage(tenant, cost="0.0000000005", user_label="alice", model_served="gpt-4o")
    usage(tenant, cost="2", user_label="alice", model_requested="gpt-4o")  # failed before any model served
    usage(tenant, cost="5", user_label="alice", model_served="gpt-4o-mini")  # another model
    usage(tenant, cost="5", user_label="bob", model_served="gpt-4o")  # another user
    usage(other, cost="5", user_label="alice", model_served="gpt-4o")  # another tenant
    usage(tenant, cost="5", user_label="alice", model_served="gpt-4o", created_at=start - timedelta(seconds=1))
    assert budget_spent(budget.id, start) == D("3.2500000005")
    s = spec_from_budget(budget)

    async def scenario(engine):
        first = await engine.reserve([s], amount=D(1), request_id="first")  # default loader: the ledger
        assert isinstance(first, Reservation)
        state = await engine.counter(s)
        assert (state.used, state.reserved) == (D("3.250000001"), D(1))  # ledger sum rounded up to a nano-dollar
        if kind == "redis":
            # Redis lost the counter (restart, eviction): the next reserve rebuilds it from the ledger, which
            # meanwhile holds more spend.
            await asyncio.to_thread(usage, tenant, cost="6", user_label="alice", model_served="gpt-4o")
            await engine.redis.delete(engine.entry(s, datetime.now(UTC)).key)
            refused = await engine.reserve([s], amount=D(1), request_id="second")
            assert isinstance(refused, Refusal) and refused.used == D("9.250000001")
            # Concurrent rebuilders agree: the first one wins, later ones change nothing.
            await engine.redis.delete(engine.entry(s, datetime.now(UTC)).key)
            assert await engine.rebuild(s, D(1))
            assert not await engine.rebuild(s, D(7))
            assert (await engine.counter(s)).used == D(1)

    run(kind, scenario, load_used=load_used_from_ledger)


@pytest.fixture
def eager_celery():
    """Celery as the embedded default runs it: tasks in-process, right where they are enqueued."""
    from cbplatform.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = before


@pytest.mark.django_db(transaction=True)
def test_settled_alerts_are_recorded_off_the_event_loop(eager_celery):
    budget = services.budget_create(tenant=factories.tenant(), limit=D(2), period="weekly", action="notify",
                                    alert_thresholds=[50])
    s = spec_from_budget(budget)

    async def scenario(engine):
        reservation = await engine.reserve([s], amount=D(1), request_id="w1")
        settlement = await engine.settle(reservation, actual=D("1.2"))
        assert await record_alerts(settlement.alerts) == 1
        assert await record_alerts(settlement.alerts) == 0  # once per threshold per period
        assert await record_alerts([]) == 0

    run("redis", scenario)
    alert = BudgetAlert.objects.get(budget=budget)
    assert (alert.threshold, alert.spent, alert.period_start) == (D(50), D("1.2"), period_bounds("weekly")[0])


@pytest.mark.django_db(transaction=True)
def test_the_alerts_task_takes_ids_and_numbers_and_is_idempotent():
    from apps.billing.budget_outcomes import AlertDue
    from apps.billing.tasks import record_budget_alerts

    budget = services.budget_create(tenant=factories.tenant(), limit=D(10), period="daily", action="notify",
                                    alert_thresholds=[50, 80])
    start, _ = period_bounds("daily")
    messages = [AlertDue(budget.id, start, 50, D("5.5")).as_message(),
                AlertDue(budget.id, start, 80, D("8.25")).as_message()]
    assert orjson.loads(orjson.dumps(messages)) == messages  # JSON-safe: what a Redis broker carries
    assert record_budget_alerts.apply(args=[messages]).get() == 2
    assert record_budget_alerts.apply(args=[messages]).get() == 0  # a redelivered message records nothing
    alerts = BudgetAlert.objects.filter(budget=budget).order_by("threshold")
    assert [(a.threshold, a.spent, a.period_start) for a in alerts] == [(D(50), D("5.5"), start),
                                                                      (D(80), D("8.25"), start)]
