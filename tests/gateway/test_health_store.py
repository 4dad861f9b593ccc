"""Deployment health store and circuit breaker, against real Redis and the in-process store alike."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from apps.gateway.health import (
    KEY_TTL_SECONDS,
    UNKNOWN,
    BreakerConfig,
    HealthStats,
    LocalHealthStore,
    RedisHealthStore,
    health_store_for_settings,
)
from apps.gateway.health_store_redis import RECORD_MANY_SHA
from tests.conftest import free_port

DEP = "7:3:gpt-4o"
COOLDOWN = 0.3


def config(**overrides) -> BreakerConfig:
    values = {"failure_threshold": 3, "error_rate_threshold": 0.5, "min_requests": 100, "window_seconds": 60,
              "cooldown_seconds": COOLDOWN, "half_open_probes": 1}
    return BreakerConfig(**{**values, **overrides})


def new_client() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.REDIS_URL)


def run(kind: str, scenario, **overrides):
    """Run `scenario(store)` on a fresh event loop with a store of `kind` ("redis" or "local")."""
    async def main():
        cfg = config(**overrides)
        if kind == "local":
            store = LocalHealthStore(cfg)
            try:
                return await scenario(store)
            finally:
                await store.close()
        client = new_client()
        store = RedisHealthStore(client, cfg)
        try:
            return await scenario(store)
        finally:
            await store.close()
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture(params=["redis", "local"])
def kind(request) -> str:
    return request.param


async def one(store, deployment_id: str = DEP) -> HealthStats:
    return (await store.stats([deployment_id]))[deployment_id]


async def fail(store, n: int = 1, deployment_id: str = DEP) -> None:
    for _ in range(n):
        await store.acquire(deployment_id)
        await store.record_failure(deployment_id)


async def succeed(store, n: int = 1, deployment_id: str = DEP, latency_ms: float = 100.0) -> None:
    for _ in range(n):
        await store.acquire(deployment_id)
        await store.record_success(deployment_id, latency_ms=latency_ms)


def test_consecutive_failures_open_the_circuit(kind):
    async def scenario(store):
        await fail(store, 2)
        stats = await one(store)
        assert (stats.circuit, stats.consecutive_failures, stats.available) == ("closed", 2, True)
        assert await store.acquire(DEP)
        await store.record_failure(DEP)
        stats = await one(store)
        assert (stats.circuit, stats.consecutive_failures, stats.available) == ("open", 3, False)
        assert (stats.requests, stats.errors, stats.error_rate) == (3, 3, 1.0)
        assert not await store.acquire(DEP)
        assert (await one(store)).inflight == 0

    run(kind, scenario)


def test_a_success_resets_the_consecutive_count(kind):
    async def scenario(store):
        await fail(store, 2)
        await succeed(store)
        await fail(store, 2)
        stats = await one(store)
        assert (stats.circuit, stats.consecutive_failures) == ("closed", 2)

    run(kind, scenario)


def test_error_rate_threshold_opens_the_circuit(kind):
    async def scenario(store):
        await succeed(store)
        await fail(store)  # 50 % but only 2 outcomes, below min_requests
        assert (await one(store)).circuit == "closed"
        await succeed(store)  # 3 outcomes, 1 error
        assert (await one(store)).circuit == "closed"
        await fail(store)  # 4 outcomes, 2 errors: 0.5 ≥ threshold
        stats = await one(store)
        assert (stats.requests, stats.errors, stats.error_rate, stats.consecutive_failures) == (4, 2, 0.5, 1)
        assert stats.circuit == "open"
        assert not await store.acquire(DEP)

    run(kind, scenario, failure_threshold=100, min_requests=4)


def test_after_the_cooldown_exactly_the_probe_slots_are_granted(kind):
    async def scenario(store):
        await fail(store, 3)
        assert not await store.acquire(DEP)
        await asyncio.sleep(COOLDOWN + 0.05)
        stats = await one(store)
        assert (stats.circuit, stats.available) == ("half_open", True)
        granted = [await store.acquire(DEP) for _ in range(4)]
        assert granted == [True, True, False, False]
        stats = await one(store)
        assert (stats.circuit, stats.inflight) == ("half_open", 2)

    run(kind, scenario, half_open_probes=2)


def test_a_probe_success_closes_the_circuit(kind):
    async def scenario(store):
        await fail(store, 3)
        await asyncio.sleep(COOLDOWN + 0.05)
        assert await store.acquire(DEP)
        await store.record_success(DEP, latency_ms=50)
        stats = await one(store)
        assert (stats.circuit, stats.consecutive_failures, stats.inflight) == ("closed", 0, 0)
        assert all([await store.acquire(DEP) for _ in range(5)])

    run(kind, scenario)


def test_a_success_while_open_before_the_cooldown_keeps_it_open(kind):
    """A request admitted before the circuit opened may still succeed; it does not cut the cooldown short."""
    async def scenario(store):
        assert await store.acquire(DEP)  # admitted while closed, still running
        await fail(store, 3)
        await store.record_success(DEP, latency_ms=50)
        assert (await one(store)).circuit == "open"

    run(kind, scenario)


def test_a_probe_failure_reopens_the_circuit_with_a_new_cooldown(kind):
    cooldown = 0.6

    async def scenario(store):
        await fail(store, 3)
        await asyncio.sleep(cooldown + 0.05)
        assert await store.acquire(DEP)
        await store.record_failure(DEP)
        stats = await one(store)
        assert (stats.circuit, stats.consecutive_failures, stats.inflight) == ("open", 4, 0)
        assert not await store.acquire(DEP)
        await asyncio.sleep(0.2)
        assert (await one(store)).circuit == "open"  # the cooldown started again at the re-open
        await asyncio.sleep(cooldown - 0.2 + 0.05)
        assert (await one(store)).circuit == "half_open"
        assert await store.acquire(DEP)

    run(kind, scenario, cooldown_seconds=cooldown)


def test_open_past_cooldown_counts_as_half_open_for_outcomes(kind):
    """Nobody acquired since the cooldown ended: a success (e.g. of a request admitted earlier) closes it."""
    async def scenario(store):
        await fail(store, 3)
        await asyncio.sleep(COOLDOWN + 0.05)
        await store.record_success(DEP, latency_ms=10)
        assert (await one(store)).circuit == "closed"
        await fail(store, 3)
        await asyncio.sleep(COOLDOWN + 0.05)
        await store.record_failure(DEP)
        assert (await one(store)).circuit == "open"

    run(kind, scenario)


def test_429_rate_limits_without_opening_the_circuit(kind):
    retry_after = 0.6

    async def scenario(store):
        for _ in range(3):  # three requests in flight when the provider starts answering 429
            assert await store.acquire(DEP)
        for _ in range(3):
            before = time.time()
            await store.record_failure(DEP, rate_limited=True, retry_after=retry_after)
        stats = await one(store)
        assert stats.circuit == "closed"
        assert (stats.requests, stats.errors, stats.consecutive_failures, stats.inflight) == (3, 0, 0, 0)
        assert stats.rate_limited_until == pytest.approx(before + retry_after, abs=0.1)
        assert not stats.available
        assert not await store.acquire(DEP)
        await asyncio.sleep(retry_after + 0.05)
        stats = await one(store)
        assert stats.available and stats.rate_limited_until is None
        assert await store.acquire(DEP)

    run(kind, scenario, failure_threshold=1, min_requests=1)


def test_429_without_retry_after_waits_one_second_and_a_success_clears_it(kind):
    async def scenario(store):
        before = time.time()
        await store.record_failure(DEP, rate_limited=True)
        assert (await one(store)).rate_limited_until == pytest.approx(before + 1.0, abs=0.1)
        await store.record_failure(DEP, rate_limited=True, retry_after=30)
        assert (await one(store)).rate_limited_until == pytest.approx(before + 30, abs=0.2)
        assert not await store.acquire(DEP)
        await store.record_success(DEP, latency_ms=10)  # e.g. a request that was already in flight
        stats = await one(store)
        assert stats.rate_limited_until is None and stats.available
        assert await store.acquire(DEP)

    run(kind, scenario)


def test_a_rate_limited_probe_frees_its_slot_and_leaves_the_circuit_half_open(kind):
    async def scenario(store):
        await fail(store, 3)
        await asyncio.sleep(COOLDOWN + 0.05)
        assert await store.acquire(DEP)
        await store.record_failure(DEP, rate_limited=True, retry_after=0.2)
        stats = await one(store)
        assert (stats.circuit, stats.consecutive_failures) == ("half_open", 3)
        assert not await store.acquire(DEP)
        await asyncio.sleep(0.25)
        assert await store.acquire(DEP)

    run(kind, scenario)


def test_ewma_of_latency_and_ttft(kind):
    async def scenario(store):
        assert (await one(store)).latency_ms is None
        await store.record_success(DEP, latency_ms=100)
        stats = await one(store)
        assert (stats.latency_ms, stats.ttft_ms) == (100, None)
        await store.record_success(DEP, latency_ms=200, ttft_ms=40)
        stats = await one(store)
        assert stats.latency_ms == pytest.approx(0.2 * 200 + 0.8 * 100)  # 120
        assert stats.ttft_ms == pytest.approx(40)
        await store.record_success(DEP, latency_ms=50, ttft_ms=90)
        stats = await one(store)
        assert stats.latency_ms == pytest.approx(0.2 * 50 + 0.8 * 120)  # 106
        assert stats.ttft_ms == pytest.approx(0.2 * 90 + 0.8 * 40)  # 50
        await store.record_failure(DEP, latency_ms=1000)  # a slow failure (timeout) counts for latency
        await store.record_failure(DEP)  # no measurement: unchanged
        stats = await one(store)
        assert stats.latency_ms == pytest.approx(0.2 * 1000 + 0.8 * 106)  # 284.8
        assert stats.ttft_ms == pytest.approx(50)

    run(kind, scenario)


def test_ewma_alpha_is_configurable(kind):
    async def scenario(store):
        await store.record_success(DEP, latency_ms=10.5, ttft_ms=3)
        await store.record_success(DEP, latency_ms=20.25, ttft_ms=7)
        stats = await one(store)
        assert stats.latency_ms == pytest.approx(0.75 * 20.25 + 0.25 * 10.5)
        assert stats.ttft_ms == pytest.approx(0.75 * 7 + 0.25 * 3)

    run(kind, scenario, ewma_alpha=0.75)


def test_inflight_counts_up_and_down_and_never_below_zero(kind):
    async def scenario(store):
        for _ in range(3):
            assert await store.acquire(DEP)
        assert (await one(store)).inflight == 3
        await store.record_success(DEP, latency_ms=1)
        assert (await one(store)).inflight == 2
        await store.record_failure(DEP)
        assert (await one(store)).inflight == 1
        await store.release(DEP)
        assert (await one(store)).inflight == 0
        await store.release(DEP)
        await store.record_success(DEP, latency_ms=1)
        await store.record_failure(DEP, rate_limited=True, retry_after=0.01)
        assert (await one(store)).inflight == 0
        await store.release("never:0:seen")
        assert (await one(store, "never:0:seen")) == UNKNOWN

    run(kind, scenario)


def test_release_frees_a_probe_slot(kind):
    async def scenario(store):
        await fail(store, 3)
        await asyncio.sleep(COOLDOWN + 0.05)
        assert await store.acquire(DEP)
        assert not await store.acquire(DEP)
        await store.release(DEP)  # the probe's client went away: no verdict
        stats = await one(store)
        assert (stats.circuit, stats.inflight) == ("half_open", 0)
        assert await store.acquire(DEP)
        assert not await store.acquire(DEP)

    run(kind, scenario)


def test_a_probe_that_never_reports_back_stops_blocking_after_the_probe_timeout(kind):
    async def scenario(store):
        await fail(store, 3)
        await asyncio.sleep(COOLDOWN + 0.05)
        assert await store.acquire(DEP)  # its process dies: no outcome, no release
        assert not await store.acquire(DEP)
        await asyncio.sleep(0.45)
        assert await store.acquire(DEP)

    run(kind, scenario, probe_timeout_seconds=0.4)


def test_the_window_forgets_old_outcomes(kind):
    async def scenario(store):
        await fail(store, 3)
        await succeed(store)
        stats = await one(store)
        assert (stats.requests, stats.errors, stats.error_rate) == (4, 3, 0.75)
        await asyncio.sleep(1.1)
        stats = await one(store)
        assert (stats.requests, stats.errors, stats.error_rate) == (0, 0, 0.0)
        assert stats.latency_ms == 100  # averages are not windowed
        # Old errors no longer count toward the error-rate threshold.
        await fail(store, 1)
        stats = await one(store)
        assert (stats.requests, stats.errors, stats.circuit) == (1, 1, "closed")
        return stats

    run(kind, scenario, failure_threshold=100, min_requests=4, window_seconds=1)


def test_redis_prunes_old_buckets_and_keeps_a_ttl(redis_client):
    async def scenario(store):
        for _ in range(7):
            await fail(store, 1)
            await asyncio.sleep(0.2)
        await succeed(store)

    run("redis", scenario, failure_threshold=100, window_seconds=1)
    key = f"cb:health:{DEP}"
    fields = [f.decode() for f in redis_client.hkeys(key)]
    buckets = [f for f in fields if f[:2] in ("r:", "e:")]
    assert 0 < len(buckets) <= 2 * 6
    current = int(time.time() / (1 / 6))
    assert all(int(f[2:]) > current - 8 for f in buckets)
    assert 0 < redis_client.ttl(key) <= KEY_TTL_SECONDS


def test_redis_acquire_alone_sets_a_ttl(redis_client):
    async def scenario(store):
        assert await store.acquire(DEP)

    run("redis", scenario)
    assert 0 < redis_client.ttl(f"cb:health:{DEP}") <= KEY_TTL_SECONDS


def test_stats_of_unknown_and_many_ids(kind):
    async def scenario(store):
        assert await store.stats([]) == {}
        await fail(store, 3, deployment_id="1:0:a")
        await succeed(store, 2, deployment_id="2:0:b")
        ids = ["1:0:a", "2:0:b", "nope:0:x", *(f"9:{i}:m" for i in range(100))]
        stats = await store.stats(ids)
        assert list(stats) == ids
        assert stats["1:0:a"].circuit == "open"
        assert (stats["2:0:b"].requests, stats["2:0:b"].latency_ms) == (2, 100)
        assert stats["nope:0:x"] == UNKNOWN
        assert all(stats[f"9:{i}:m"] == UNKNOWN for i in range(100))
        assert UNKNOWN.available

    run(kind, scenario)


def test_reset_forgets_everything(kind):
    async def scenario(store):
        await fail(store, 3)
        await store.record_failure(DEP, rate_limited=True, retry_after=60)
        await store.reset(DEP)
        assert await one(store) == UNKNOWN
        assert await store.acquire(DEP)

    run(kind, scenario)


def test_two_redis_stores_share_state():
    async def main():
        client_a, client_b = new_client(), new_client()
        a, b = RedisHealthStore(client_a, config()), RedisHealthStore(client_b, config())
        try:
            await fail(a, 3)
            stats = await one(b)
            assert (stats.circuit, stats.consecutive_failures) == ("open", 3)
            assert not await b.acquire(DEP)
            await asyncio.sleep(COOLDOWN + 0.05)
            assert await b.acquire(DEP)  # b holds the probe …
            assert not await a.acquire(DEP)  # … so a gets none
            await b.record_success(DEP, latency_ms=80)
            assert (await one(a)).circuit == "closed"
            assert await a.acquire(DEP)
            assert (await one(b)).inflight == 1
        finally:
            await client_a.aclose()
            await client_b.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("probes", [1, 3])
def test_concurrent_acquires_from_two_stores_grant_exactly_the_probe_slots(probes):
    async def main():
        client_a, client_b = new_client(), new_client()
        a = RedisHealthStore(client_a, config(half_open_probes=probes))
        b = RedisHealthStore(client_b, config(half_open_probes=probes))
        try:
            await fail(a, 3)
            await asyncio.sleep(COOLDOWN + 0.05)
            assert (await one(b)).circuit == "half_open"
            results = await asyncio.gather(*(store.acquire(DEP) for _ in range(25) for store in (a, b)))
            assert len(results) == 50
            assert sum(results) == probes
            assert (await one(a)).inflight == probes
        finally:
            await client_a.aclose()
            await client_b.aclose()

    asyncio.run(main())


def test_concurrent_acquires_on_the_local_store_grant_exactly_the_probe_slots():
    async def scenario(store):
        await fail(store, 3)
        await asyncio.sleep(COOLDOWN + 0.05)
        results = await asyncio.gather(*(store.acquire(DEP) for _ in range(50)))
        assert sum(results) == 2

    run("local", scenario, half_open_probes=2)


def test_a_dead_redis_degrades_instead_of_raising(caplog):
    async def main():
        client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5,
                                         socket_timeout=0.5)
        store = RedisHealthStore(client, config())
        try:
            started = time.monotonic()
            assert await store.stats([DEP, "x:0:y"]) == {DEP: UNKNOWN, "x:0:y": UNKNOWN}
            assert await store.acquire(DEP) is True
            await store.record_success(DEP, latency_ms=1)
            await store.record_successes([(DEP, 10.0, None), ("x:0:y", 30.0, 4.0)])
            await store.record_failure(DEP)
            await store.record_failure(DEP, rate_limited=True, retry_after=5)
            await store.release(DEP)
            store.backoff.reset()  # skip the back-off: every call must survive a real attempt too
            assert await store.acquire(DEP) is True
            store.backoff.reset()
            await store.record_failure(DEP)
            store.backoff.reset()
            await store.release(DEP)
            store.backoff.reset()
            await store.record_successes([(DEP, 10.0, None), ("x:0:y", 30.0, 4.0)])
            assert store.backoff.down
            store.backoff.reset()
            assert await store.stats([DEP]) == {DEP: UNKNOWN}
            return time.monotonic() - started
        finally:
            await store.close()
            await client.aclose()

    with caplog.at_level(logging.WARNING, logger="apps.gateway.health"):
        elapsed = asyncio.run(main())
    assert elapsed < 10
    warnings = [r.getMessage() for r in caplog.records if r.name == "apps.gateway.health"]
    assert warnings and all("health store: Redis" in w for w in warnings)


def test_a_script_error_fails_only_its_call_and_never_backs_off(caplog):
    """A key of the wrong type (WRONGTYPE inside the Lua script) is that one deployment's problem: logged as an
    error, answered degraded, and the store keeps using Redis for every other deployment."""
    async def scenario(store):
        await store.reset(DEP)
        await store.redis.set(store.key(DEP), "not a hash")
        try:
            assert await store.acquire(DEP) is True
            await store.record_failure(DEP)
            assert not store.backoff.down
            for _ in range(3):
                await store.record_failure("other:0:model")
            assert (await store.stats(["other:0:model"]))["other:0:model"].circuit == "open"
        finally:
            await store.reset(DEP)
            await store.reset("other:0:model")

    with caplog.at_level(logging.WARNING, logger="apps.gateway.health"):
        run("redis", scenario)
    errors = [r for r in caplog.records if r.name == "apps.gateway.health" and r.levelno == logging.ERROR]
    assert errors and all("this call failed, Redis is still used" in r.getMessage() for r in errors)


# ---- batched successes (record_successes): the state of the same successes recorded one by one ----------------

SAMPLES = [("a:0:m", 120.5, 30.0), ("b:0:m", 80.0, None), ("a:0:m", 90.25, None), ("c:0:m", 10.0, 5.5),
           ("b:0:m", 300.0, 45.0), ("a:0:m", 200.0, 60.125), ("c:0:m", 11.0, None), ("a:0:m", 0.3, 0.1)]


def run_pair(scenario, **overrides):
    """Run `scenario(one_by_one, batched)`: two Redis stores on one client, apart only by their key prefix."""
    async def main():
        client = new_client()
        single = RedisHealthStore(client, config(**overrides), prefix="cb:single:")
        batched = RedisHealthStore(client, config(**overrides), prefix="cb:batched:")
        try:
            return await scenario(single, batched)
        finally:
            await single.close()
            await batched.close()
            await client.aclose()

    return asyncio.run(main())


async def record_one_by_one(store, samples) -> None:
    for deployment_id, latency_ms, ttft_ms in samples:
        await store.record_success(deployment_id, latency_ms=latency_ms, ttft_ms=ttft_ms)


async def hashes(single, batched, deployment_id: str) -> tuple[dict, dict]:
    return (await single.redis.hgetall(single.key(deployment_id)),
            await batched.redis.hgetall(batched.key(deployment_id)))


def test_batched_successes_leave_the_state_of_one_by_one_successes():
    async def scenario(single, batched):
        for store in (single, batched):  # the same history before the successes
            await store.record_success("a:0:m", latency_ms=100, ttft_ms=20)
            await fail(store, 2, deployment_id="a:0:m")
            for _ in range(5):
                assert await store.acquire("a:0:m")
            for _ in range(2):
                assert await store.acquire("b:0:m")
            await store.record_failure("b:0:m", rate_limited=True, retry_after=30)
        await record_one_by_one(single, SAMPLES)
        await batched.record_successes(SAMPLES)
        for deployment_id in ("a:0:m", "b:0:m", "c:0:m"):
            one_by_one, at_once = await hashes(single, batched, deployment_id)
            assert at_once == one_by_one  # every field, EWMAs to the bit
            assert 0 < await batched.redis.ttl(batched.key(deployment_id)) <= KEY_TTL_SECONDS
        a = (await hashes(single, batched, "a:0:m"))[1]
        assert (a[b"inf"], a[b"cf"]) == (b"1", b"0")  # 5 in flight, 4 successes
        assert sum(int(v) for k, v in a.items() if k.startswith(b"r:")) == 1 + 2 + 4
        latency, ttft = 100.0, 20.0
        for _, latency_ms, ttft_ms in [s for s in SAMPLES if s[0] == "a:0:m"]:
            latency = 0.2 * latency_ms + 0.8 * latency
            ttft = ttft if ttft_ms is None else 0.2 * ttft_ms + 0.8 * ttft
        assert (float(a[b"lat"]), float(a[b"ttft"])) == (pytest.approx(latency), pytest.approx(ttft))
        b = (await hashes(single, batched, "b:0:m"))[1]
        assert b[b"inf"] == b"0" and b"rl" not in b  # 1 left in flight after the 429, 2 successes
        stats = await batched.stats(["b:0:m", "c:0:m"])
        assert stats["b:0:m"].available and stats["b:0:m"].ttft_ms == 45.0
        assert (stats["c:0:m"].requests, stats["c:0:m"].ttft_ms) == (2, 5.5)

    # Long buckets: both stores' successes land in the same one.
    run_pair(scenario, failure_threshold=100, window_seconds=60_000)


@pytest.mark.parametrize("probe", [True, False], ids=["probe-acquired", "open-past-cooldown"])
def test_a_batched_success_closes_a_half_open_circuit_like_a_single_one(probe):
    async def scenario(single, batched):
        for store in (single, batched):
            await fail(store, 3)
        await asyncio.sleep(COOLDOWN + 0.05)
        for store in (single, batched):
            assert (await one(store)).circuit == "half_open"
            if probe:
                assert await store.acquire(DEP)
        samples = [(DEP, 50.0, None), (DEP, 70.0, 12.0)]
        await record_one_by_one(single, samples)
        await batched.record_successes(samples)
        one_by_one, at_once = await hashes(single, batched, DEP)
        assert at_once == one_by_one
        assert b"oa" not in at_once and b"pa" not in at_once
        stats = await one(batched)
        assert (stats.circuit, stats.consecutive_failures, stats.inflight) == ("closed", 0, 0)
        assert all([await batched.acquire(DEP) for _ in range(3)])

    run_pair(scenario, window_seconds=60_000)


def test_batched_successes_survive_a_flushed_script_cache(caplog):
    async def scenario(store):
        await store.record_successes([(DEP, 10.0, None)])
        assert await store.redis.script_exists(RECORD_MANY_SHA) == [True]
        await store.redis.script_flush()  # as after a Redis restart
        await store.record_successes([(DEP, 20.0, 5.0), ("x:0:y", 30.0, None), (DEP, 40.0, None)])
        stats = await store.stats([DEP, "x:0:y"])
        assert (stats[DEP].requests, stats["x:0:y"].requests) == (3, 1)
        assert stats[DEP].latency_ms == pytest.approx(0.2 * 40 + 0.8 * (0.2 * 20 + 0.8 * 10))
        assert await store.redis.script_exists(RECORD_MANY_SHA) == [True]
        assert not store.backoff.down

    with caplog.at_level(logging.WARNING, logger="apps.gateway.health"):
        run("redis", scenario)
    assert not [r for r in caplog.records if r.name == "apps.gateway.health"]


def test_a_bad_key_in_a_batch_fails_only_that_deployment(caplog):
    async def scenario(store):
        await store.redis.set(store.key(DEP), "not a hash")
        await store.record_successes([(DEP, 10.0, None), ("x:0:y", 30.0, None), (DEP, 40.0, None)])
        assert not store.backoff.down
        stats = await store.stats([DEP, "x:0:y"])
        assert stats[DEP] == UNKNOWN
        assert (stats["x:0:y"].requests, stats["x:0:y"].latency_ms) == (1, 30.0)

    with caplog.at_level(logging.WARNING, logger="apps.gateway.health"):
        run("redis", scenario)
    errors = [r for r in caplog.records if r.name == "apps.gateway.health" and r.levelno == logging.ERROR]
    assert errors and all("WRONGTYPE" in r.getMessage() for r in errors)


def test_breaker_config_from_settings(settings):
    settings.CIRCUIT_FAILURE_THRESHOLD = 7
    settings.CIRCUIT_ERROR_RATE_THRESHOLD = 0.25
    settings.CIRCUIT_MIN_REQUESTS = 20
    settings.CIRCUIT_WINDOW_SECONDS = 120
    settings.CIRCUIT_COOLDOWN_SECONDS = 5.5
    settings.CIRCUIT_HALF_OPEN_PROBES = 2
    cfg = BreakerConfig.from_settings()
    assert (cfg.failure_threshold, cfg.error_rate_threshold, cfg.min_requests, cfg.window_seconds,
            cfg.cooldown_seconds, cfg.half_open_probes) == (7, 0.25, 20, 120, 5.5, 2)
    assert cfg.bucket_seconds == 20


def test_breaker_config_defaults_and_validation(settings):
    for name in ("CIRCUIT_FAILURE_THRESHOLD", "CIRCUIT_ERROR_RATE_THRESHOLD", "CIRCUIT_MIN_REQUESTS",
                 "CIRCUIT_WINDOW_SECONDS", "CIRCUIT_COOLDOWN_SECONDS", "CIRCUIT_HALF_OPEN_PROBES"):
        if hasattr(settings, name):
            delattr(settings, name)
    assert BreakerConfig.from_settings() == BreakerConfig()
    with pytest.raises(ValueError, match="half_open_probes"):
        BreakerConfig(half_open_probes=0)
    with pytest.raises(ValueError, match="ewma_alpha"):
        BreakerConfig(ewma_alpha=0)


def test_health_store_for_settings():
    assert isinstance(health_store_for_settings(None), LocalHealthStore)

    async def main():
        client = new_client()
        try:
            store = health_store_for_settings(client)
            assert isinstance(store, RedisHealthStore)
            assert store.config == BreakerConfig.from_settings()
            assert await store.acquire(DEP)
        finally:
            await client.aclose()

    asyncio.run(main())
