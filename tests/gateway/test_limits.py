"""Gateway rate limits (requests/tokens per minute with burst, concurrency leases), against real Redis and the
in-process limiter alike."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from apps.gateway.limits import (
    Limit,
    LocalRateLimiter,
    RedisRateLimiter,
    format_duration,
    limits_for,
    rate_limiter_for_settings,
)
from tests.conftest import free_port


def new_client() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.REDIS_URL)


def run(kind: str, scenario, **options):
    """Run `scenario(limiter)` on a fresh event loop with a limiter of `kind` ("redis" or "local")."""
    async def main():
        if kind == "local":
            limiter = LocalRateLimiter(**options)
            try:
                return await scenario(limiter)
            finally:
                await limiter.close()
        client = new_client()
        limiter = RedisRateLimiter(client, **options)
        try:
            return await scenario(limiter)
        finally:
            await limiter.close()
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture(params=["redis", "local"])
def kind(request) -> str:
    return request.param


async def admits(limiter, limits, n: int, tokens: int = 0) -> int:
    """Admit n requests one after another; how many were allowed."""
    allowed = 0
    for _ in range(n):
        allowed += (await limiter.admit(limits, tokens=tokens)).allowed
    return allowed


# ---- requests per minute ------------------------------------------------------------------------------------

def test_requests_per_minute_with_burst(kind):
    """600/min + burst 5: a fresh bucket admits 605 at once, then one more every 100 ms."""
    limits = [Limit("key:1", requests_per_minute=600, burst=5)]

    async def scenario(limiter):
        start = time.monotonic()
        allowed = await admits(limiter, limits, 700)
        refill = math.floor((time.monotonic() - start) / 0.1)
        assert 605 <= allowed <= 605 + refill
        refused = await limiter.admit(limits, tokens=0)
        assert (refused.allowed, refused.reason, refused.bucket) == (False, "requests", "key:1")
        assert (refused.limit_requests, refused.remaining_requests) == (600, 0)  # the per-minute limit, not rpm + burst
        assert 0 < refused.retry_after_s <= 0.1
        assert refused.lease is None
        assert "requests per min (RPM)" in refused.message

        # The steady rate: over a real 0.6 s span, one admit per 100 ms (± the one in progress at each end).
        await asyncio.sleep(refused.retry_after_s)
        start, allowed = time.monotonic(), 0
        while time.monotonic() - start < 0.6:
            allowed += (await limiter.admit(limits, tokens=0)).allowed
            await asyncio.sleep(0.005)
        assert 6 <= allowed <= 8

    run(kind, scenario)


def test_burst_zero_admits_exactly_the_per_minute_number(kind):
    limits = [Limit("key:1", requests_per_minute=30)]  # one more every 2 s: none during the test

    async def scenario(limiter):
        assert await admits(limiter, limits, 40) == 30
        decision = await limiter.admit(limits, tokens=0)
        assert not decision.allowed
        assert 1.5 < decision.retry_after_s <= 2.0
        assert decision.headers()["retry-after"] == "2"

    run(kind, scenario)


# ---- tokens per minute --------------------------------------------------------------------------------------

def test_tokens_per_minute_refuses_a_request_that_does_not_fit(kind):
    limits = [Limit("key:1", requests_per_minute=600, tokens_per_minute=1000)]

    async def scenario(limiter):
        first = await limiter.admit(limits, tokens=600)
        assert first.allowed and first.remaining_tokens == 400
        refused = await limiter.admit(limits, tokens=500)
        assert (refused.allowed, refused.reason, refused.bucket) == (False, "tokens", "key:1")
        assert refused.remaining_tokens == 400
        assert 5.5 < refused.retry_after_s <= 6.0  # 100 tokens at 1000/min
        assert refused.remaining_requests == 599  # the refused request took no request either
        assert "tokens per min (TPM)" in refused.message
        fits = await limiter.admit(limits, tokens=400)
        assert fits.allowed and fits.remaining_tokens == 0 and fits.remaining_requests == 598

        too_large = await limiter.admit(limits, tokens=1001)  # never fits: no point retrying
        assert (too_large.allowed, too_large.reason, too_large.retry_after_s) == (False, "tokens", None)
        assert "retry-after" not in too_large.headers()
        assert "too large" in too_large.message

    run(kind, scenario)


def test_settle_refunds_or_charges_the_difference_and_never_goes_above_full(kind):
    limits = [Limit("key:1", tokens_per_minute=1000)]

    async def scenario(limiter):
        estimate = await limiter.admit(limits, tokens=800)
        await limiter.settle(limits, estimated_tokens=800, actual_tokens=100, lease=estimate.lease)
        assert (await limiter.admit(limits, tokens=900)).allowed  # 700 refunded: 900 left (plus a hair of refill)
        assert not (await limiter.admit(limits, tokens=50)).allowed

    run(kind, scenario)

    limits = [Limit("key:2", tokens_per_minute=1000)]  # a fresh bucket (Redis keeps the first one's)

    async def charge_more(limiter):
        low = await limiter.admit(limits, tokens=100)
        await limiter.settle(limits, estimated_tokens=100, actual_tokens=950, lease=low.lease)
        refused = await limiter.admit(limits, tokens=100)
        assert (refused.allowed, refused.reason) == (False, "tokens")
        assert refused.remaining_tokens <= 50

    run(kind, charge_more)

    limits = [Limit("key:3", tokens_per_minute=1000)]

    async def refund_to_full(limiter):
        decision = await limiter.admit(limits, tokens=500)
        await limiter.settle(limits, estimated_tokens=500, actual_tokens=0, lease=decision.lease)
        await limiter.settle(limits, estimated_tokens=500, actual_tokens=0, lease=decision.lease)  # a double refund
        assert (await limiter.admit(limits, tokens=1000)).allowed
        assert not (await limiter.admit(limits, tokens=1)).allowed  # no credit beyond a full bucket

    run(kind, refund_to_full)


# ---- concurrency --------------------------------------------------------------------------------------------

def test_concurrency_limit_and_settle_release_free_slots(kind):
    limits = [Limit("key:1", concurrent=3)]

    async def scenario(limiter):
        held = [await limiter.admit(limits, tokens=10) for _ in range(3)]
        assert all(d.allowed and d.lease for d in held)
        assert len({d.lease for d in held}) == 3
        refused = await limiter.admit(limits, tokens=10)
        assert (refused.allowed, refused.reason, refused.bucket, refused.retry_after_s) == (
            False, "concurrency", "key:1", 1.0)
        assert refused.headers() == {"retry-after": "1"}  # no OpenAI header describes concurrency
        await limiter.settle(limits, estimated_tokens=10, actual_tokens=7, lease=held[0].lease)
        again = await limiter.admit(limits, tokens=10)
        assert again.allowed
        assert not (await limiter.admit(limits, tokens=10)).allowed
        await limiter.release(limits, held[1].lease)
        await limiter.release(limits, held[1].lease)  # releasing twice frees one slot, not two
        assert (await limiter.admit(limits, tokens=10)).allowed
        assert not (await limiter.admit(limits, tokens=10)).allowed

    run(kind, scenario)


def test_a_crashed_holders_slots_come_back_after_the_lease(kind):
    limits = [Limit("tenant:7", concurrent=2)]

    async def scenario(limiter):
        assert (await limiter.admit(limits, tokens=0)).allowed  # holders that never settle
        assert (await limiter.admit(limits, tokens=0)).allowed
        assert not (await limiter.admit(limits, tokens=0)).allowed
        await asyncio.sleep(0.35)
        assert (await limiter.admit(limits, tokens=0)).allowed
        assert (await limiter.admit(limits, tokens=0)).allowed
        assert not (await limiter.admit(limits, tokens=0)).allowed

    run(kind, scenario, lease_seconds=0.3)


def test_a_dead_process_slots_come_back_in_redis():
    """The holder is another limiter on another connection that goes away without settling."""
    limits = [Limit("key:9", concurrent=1)]

    async def main():
        crashed_client, client = new_client(), new_client()
        crashed = RedisRateLimiter(crashed_client, lease_seconds=0.3)
        survivor = RedisRateLimiter(client, lease_seconds=0.3)
        assert (await crashed.admit(limits, tokens=0)).allowed
        await crashed_client.aclose()
        assert not (await survivor.admit(limits, tokens=0)).allowed
        await asyncio.sleep(0.35)
        assert (await survivor.admit(limits, tokens=0)).allowed
        await client.aclose()

    asyncio.run(main())


# ---- atomicity ----------------------------------------------------------------------------------------------

def test_a_request_refused_by_one_bucket_takes_nothing_from_the_others(kind):
    key = Limit("key:1", requests_per_minute=3, concurrent=2)
    tenant = Limit("tenant:1", tokens_per_minute=100)
    glob = Limit("global", requests_per_minute=1000)
    limits = [key, tenant, glob]

    async def scenario(limiter):
        first = await limiter.admit(limits, tokens=100)  # empties the tenant's tokens
        assert first.allowed
        for _ in range(5):
            refused = await limiter.admit(limits, tokens=50)
            assert (refused.allowed, refused.reason, refused.bucket) == (False, "tokens", "tenant:1")
        # Had the refusals taken anything, the key's requests or its second concurrency slot would be gone.
        second = await limiter.admit(limits, tokens=0)
        assert second.allowed
        assert second.remaining_requests == 1  # the tightest requests bucket is the key's: 3 - 2
        assert second.limit_requests == 3
        third = await limiter.admit([key, glob], tokens=0)
        assert (third.allowed, third.reason) == (False, "concurrency")
        await limiter.release(limits, first.lease)
        await limiter.release(limits, second.lease)
        last = await limiter.admit([key, glob], tokens=0)
        assert last.allowed and last.remaining_requests == 0
        refused = await limiter.admit([key, tenant, glob], tokens=0)
        assert (refused.allowed, refused.reason, refused.bucket) == (False, "requests", "key:1")
        glob_only = await limiter.admit([glob], tokens=0)
        assert glob_only.remaining_requests == 1000 - 4  # 3 admits + this one; the refusals took nothing

    run(kind, scenario)


def test_two_processes_admit_exactly_the_limit_under_concurrency():
    """200 concurrent admits through two limiters on separate connections against 50/min (burst 0) admit 50;
    against 20 concurrent slots, 20."""
    rate = [Limit("key:1", requests_per_minute=50)]
    slots = [Limit("key:2", concurrent=20)]

    async def main():
        clients = [new_client(), new_client()]
        limiters = [RedisRateLimiter(c) for c in clients]
        try:
            start = time.monotonic()
            decisions = await asyncio.gather(*(limiters[i % 2].admit(rate, tokens=0) for i in range(200)))
            refill = math.floor((time.monotonic() - start) / 1.2)  # 50/min: one more every 1.2 s
            allowed = sum(d.allowed for d in decisions)
            assert 50 <= allowed <= 50 + refill
            assert all(d.reason == "requests" for d in decisions if not d.allowed)
            decisions = await asyncio.gather(*(limiters[i % 2].admit(slots, tokens=0) for i in range(200)))
            assert sum(d.allowed for d in decisions) == 20
        finally:
            for client in clients:
                await client.aclose()

    asyncio.run(main())


# ---- headers ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.0004, "1ms"), (0.02, "20ms"), (0.999, "999ms"), (1, "1s"), (1.5, "1.5s"), (8.64, "8.64s"),
    (59.999, "59.999s"), (60, "1m0s"), (80.155, "1m20.155s"), (360, "6m0s"), (3600, "1h0m0s"),
    (3725.5, "1h2m5.5s"),
])
def test_openai_duration_strings(seconds, text):
    assert format_duration(seconds) == text


def test_headers_describe_the_tightest_bucket(kind):
    limits = [Limit("key:1", requests_per_minute=600, tokens_per_minute=6000),
              Limit("tenant:1", requests_per_minute=100, tokens_per_minute=60000),
              Limit("global", requests_per_minute=10000)]

    async def scenario(limiter):
        decision = await limiter.admit(limits, tokens=100)
        assert decision.allowed
        assert decision.headers() == {
            "x-ratelimit-limit-requests": "100",  # the tenant's requests bucket is the tightest …
            "x-ratelimit-remaining-requests": "99",
            "x-ratelimit-reset-requests": "600ms",  # … and full again 60 s / 100 after this request
            "x-ratelimit-limit-tokens": "6000",  # the key's tokens bucket is the tightest
            "x-ratelimit-remaining-tokens": "5900",
            "x-ratelimit-reset-tokens": "1s",  # 100 tokens at 6000/min
        }
        refused = await limiter.admit(limits, tokens=6000)
        headers = refused.headers()
        assert not refused.allowed and refused.reason == "tokens" and refused.bucket == "key:1"
        assert headers["x-ratelimit-remaining-tokens"] == "5900"
        assert headers["x-ratelimit-remaining-requests"] == "99"
        assert headers["retry-after"] == "1"  # 100 tokens short at 100/s: 1 s, rounded up

    run(kind, scenario)


def test_headers_only_for_limits_that_exist(kind):
    async def scenario(limiter):
        assert (await limiter.admit([], tokens=5)).headers() == {}
        only_tokens = await limiter.admit([Limit("key:1", tokens_per_minute=1000)], tokens=5)
        assert set(only_tokens.headers()) == {"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                                              "x-ratelimit-reset-tokens"}
        unlimited = await limiter.admit([Limit("key:2")], tokens=5)
        assert unlimited.allowed and unlimited.headers() == {} and unlimited.lease is None

    run(kind, scenario)


# ---- Redis trouble ------------------------------------------------------------------------------------------

def test_redis_down_allows_without_raising(caplog):
    limits = [Limit("key:1", requests_per_minute=1, tokens_per_minute=10, concurrent=1)]

    async def main():
        client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5,
                                         socket_timeout=0.5)
        limiter = RedisRateLimiter(client)
        try:
            with caplog.at_level(logging.WARNING, logger="apps.gateway.limits"):
                first = await limiter.admit(limits, tokens=5)
                started = time.monotonic()
                second = await limiter.admit(limits, tokens=5)  # inside the backoff: no attempt at all
                assert time.monotonic() - started < 0.05
                await limiter.settle(limits, estimated_tokens=5, actual_tokens=7, lease=first.lease)
                await limiter.release(limits, second.lease)
            for decision in (first, second):
                assert decision.allowed and decision.lease is None
                assert decision.headers() == {"x-ratelimit-limit-requests": "1", "x-ratelimit-limit-tokens": "10"}
            assert any("rate limiter: Redis admit failed" in r.getMessage() for r in caplog.records)
            assert (await limiter.admit(limits, tokens=11)).reason == "tokens"  # too large needs no Redis
        finally:
            await client.aclose()

    asyncio.run(main())


def test_redis_failure_during_settle_is_swallowed(caplog):
    """A lease taken while Redis was up, settled by a process whose Redis is gone: a warning, no exception."""
    limits = [Limit("key:1", tokens_per_minute=100, concurrent=1)]

    async def main():
        client = new_client()
        dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
        try:
            decision = await RedisRateLimiter(client).admit(limits, tokens=10)
            assert decision.allowed and decision.lease
            with caplog.at_level(logging.WARNING, logger="apps.gateway.limits"):
                limiter = RedisRateLimiter(dead)
                await limiter.settle(limits, estimated_tokens=10, actual_tokens=3, lease=decision.lease)
                await limiter.release(limits, decision.lease)  # inside the backoff: dropped quietly
            assert any("rate limiter: Redis settle failed" in r.getMessage() for r in caplog.records)
        finally:
            await client.aclose()
            await dead.aclose()

    asyncio.run(main())


def test_a_script_error_fails_only_its_call_and_never_backs_off(caplog):
    """A bucket key of the wrong type (WRONGTYPE inside the Lua script) fails open for that call only, logged as an
    error; every other bucket is still limited through Redis."""
    broken = [Limit("key:broken", requests_per_minute=1)]
    fine = [Limit("key:fine", requests_per_minute=1)]

    async def main():
        client = new_client()
        limiter = RedisRateLimiter(client)
        try:
            await client.delete(limiter.prefix + "key:fine:r")
            await client.hset(limiter.prefix + "key:broken:r", "x", "1")
            with caplog.at_level(logging.WARNING, logger="apps.gateway.limits"):
                decision = await limiter.admit(broken, tokens=0)
            assert decision.allowed and decision.lease is None
            assert not limiter.backoff.down
            assert (await limiter.admit(fine, tokens=0)).allowed
            assert not (await limiter.admit(fine, tokens=0)).allowed  # Redis is still used: 1/min holds
        finally:
            await client.delete(limiter.prefix + "key:broken:r", limiter.prefix + "key:fine:r")
            await client.aclose()

    asyncio.run(main())
    errors = [r for r in caplog.records if r.name == "apps.gateway.limits" and r.levelno == logging.ERROR]
    assert errors and "rate limiter: Redis admit was refused" in errors[0].getMessage()


# ---- which limits apply -------------------------------------------------------------------------------------

def test_limits_for_defaults_and_overrides(settings):
    settings.RATE_LIMIT_PER_MINUTE = 0
    settings.BURST_ALLOWANCE = 0
    assert limits_for(1, 2) == []

    settings.RATE_LIMIT_PER_MINUTE = 60
    settings.BURST_ALLOWANCE = 10
    settings.RATE_LIMIT_GLOBAL_PER_MINUTE = 5000
    assert limits_for(1, 2) == [Limit("key:1", requests_per_minute=60, burst=10),
                                Limit("global", requests_per_minute=5000, burst=10)]
    assert limits_for(None, None, global_rpm=0) == [Limit("key:anonymous", requests_per_minute=60, burst=10)]
    assert limits_for(1, 2, key_rpm=0, key_tpm=1000, key_concurrent=4, tenant_rpm=600, tenant_tpm=90000,
                      tenant_concurrent=50, global_rpm=0, burst=0) == [
        Limit("key:1", tokens_per_minute=1000, concurrent=4),
        Limit("tenant:2", requests_per_minute=600, tokens_per_minute=90000, concurrent=50),
    ]


def test_the_factory_follows_the_redis_client():
    assert isinstance(rate_limiter_for_settings(None), LocalRateLimiter)

    async def main():
        client = new_client()
        try:
            assert isinstance(rate_limiter_for_settings(client), RedisRateLimiter)
        finally:
            await client.aclose()

    asyncio.run(main())
