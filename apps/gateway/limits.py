"""Rate limits per API key, per tenant and global: requests per minute, tokens per minute, concurrent requests.

Every request passes `RateLimiter.admit(limits, tokens=estimate)` once: ONE atomic check-and-take over all its
buckets — either every bucket admits (1 request, the estimated tokens, one concurrency slot) or nothing is
taken — then `settle()` (real token count, slot freed) or `release()` (slot freed, estimate kept) when it ends.

Requests and tokens per minute use GCRA (the generic cell rate algorithm, a token bucket kept as one
timestamp, the "theoretical arrival time" TAT). A bucket holds one minute's worth, refills continuously at the
per-minute rate and, for requests, holds `burst` extra:

    requests: emission interval 60 s / rpm, capacity rpm + burst   (a fresh key may send rpm + burst at once,
              then rpm per minute, evenly refilled: 600/min gives one more every 100 ms)
    tokens:   emission interval 60 s / tpm, capacity tpm           (a request estimated above tpm never fits:
              refused as "too large", no Retry-After)

So the sustained rate is exact, and any 60 s window sees at most capacity + one minute's refill (a client
that waited long enough can spend a full bucket at once). x-ratelimit-limit-* report the capacity, as OpenAI
defines them ("requests permitted before exhausting the rate limit"); -remaining-* what fits right now;
-reset-* the time until the bucket is full again.

Concurrency is a sorted set per bucket: one member per admitted request (its lease id) scored by the lease's
expiry, so the slots of a process that died come back after `lease_seconds`.

`RedisRateLimiter` does each admit in one Lua script on Redis' own clock (TIME), so every process on every
host shares exact counts; `settle`/`release` are one more script. Keys per bucket (`<prefix><key>:r|t|c`)
expire once the bucket is full again / the last lease ends. `LocalRateLimiter` has the same semantics in
process memory for the embedded default. Redis trouble never reaches the request path: admit allows (fail
open), settle/release are dropped, each with a warning, and for a second after an error nobody tries.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger("apps.gateway.limits")

US = 1_000_000  # clocks and intervals are in microseconds
MINUTE_US = 60 * US
REDIS_BACKOFF_SECONDS = 1.0  # after a Redis error, fail open without trying for this long
DEFAULT_LEASE_SECONDS = 600.0  # a concurrency slot whose holder never settles comes back after this
CONCURRENCY_RETRY_SECONDS = 1.0  # Retry-After for a concurrency refusal (slots free when requests end)
SLACK_US = 1.0  # float tolerance in the GCRA comparison (interval sums are not exact)
REQUESTS, TOKENS, CONCURRENCY = "requests", "tokens", "concurrency"


@dataclass(frozen=True, slots=True)
class Limit:
    """One bucket. A dimension set to None (or 0) is unlimited."""

    key: str  # "key:42", "tenant:7", "global"
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    burst: int = 0  # extra requests a fresh bucket admits at once, above requests_per_minute
    concurrent: int | None = None  # max requests in flight


def format_duration(seconds: float) -> str:
    """OpenAI's (Go's) duration strings, to the millisecond: "20ms", "1s", "1.5s", "6m0s", "1h0m0s"."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    text = f"{secs}.{millis:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


_SCOPES = {"key": "this API key", "tenant": "this organization", "global": "this server"}


def _scope(bucket: str) -> str:
    return _SCOPES.get(bucket.split(":", 1)[0], bucket)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit_requests: int | None = None  # the tightest requests bucket: capacity (rpm + burst) …
    remaining_requests: int | None = None  # … requests it admits right now …
    reset_requests_s: float | None = None  # … and seconds until it is full again
    limit_tokens: int | None = None  # the same for the tightest tokens bucket
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None  # refused: seconds until a retry can succeed (None: it never will)
    reason: str | None = None  # refused: "requests" | "tokens" | "concurrency"
    bucket: str | None = None  # refused: the key of the bucket that refused ("key:42", "tenant:7", "global")
    message: str | None = None  # refused: an OpenAI-style sentence for the 429 body
    lease: str | None = None  # admitted and something was taken: pass to settle()/release()

    def headers(self) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers for the limits that exist, plus retry-after when refused."""
        out = {}
        if self.limit_requests is not None:
            out["x-ratelimit-limit-requests"] = str(self.limit_requests)
            if self.remaining_requests is not None:
                out["x-ratelimit-remaining-requests"] = str(self.remaining_requests)
                out["x-ratelimit-reset-requests"] = format_duration(self.reset_requests_s or 0.0)
        if self.limit_tokens is not None:
            out["x-ratelimit-limit-tokens"] = str(self.limit_tokens)
            if self.remaining_tokens is not None:
                out["x-ratelimit-remaining-tokens"] = str(self.remaining_tokens)
                out["x-ratelimit-reset-tokens"] = format_duration(self.reset_tokens_s or 0.0)
        if not self.allowed and self.retry_after_s is not None:
            out["retry-after"] = str(max(1, math.ceil(self.retry_after_s - 1e-9)))
        return out


ALLOW = Decision(allowed=True)


@dataclass(frozen=True, slots=True)
class _Check:
    """One dimension of one bucket, as the scripts see it."""

    kind: str  # REQUESTS | TOKENS | CONCURRENCY
    bucket: str
    key_suffix: str  # "<bucket>:r" | ":t" | ":c"
    limit: int  # rpm | tpm | concurrent
    capacity: int  # units the bucket holds (rpm + burst | tpm | concurrent)
    interval: float  # µs per unit (GCRA); 0 for concurrency
    window: float  # capacity * interval: how far ahead of now the TAT may run


def _checks(limit: Limit) -> list[_Check]:
    out = []
    rpm, tpm, conc = limit.requests_per_minute, limit.tokens_per_minute, limit.concurrent
    if rpm and rpm > 0:
        interval = MINUTE_US / rpm
        capacity = rpm + max(0, limit.burst)
        out.append(_Check(REQUESTS, limit.key, limit.key + ":r", rpm, capacity, interval, capacity * interval))
    if tpm and tpm > 0:
        out.append(_Check(TOKENS, limit.key, limit.key + ":t", tpm, tpm, MINUTE_US / tpm, float(MINUTE_US)))
    if conc and conc > 0:
        out.append(_Check(CONCURRENCY, limit.key, limit.key + ":c", conc, conc, 0.0, 0.0))
    return out


class _Plan:
    """The checks of one list of limits, and (RedisRateLimiter) their keys and script arguments, built once."""

    __slots__ = ("admit_args", "checks", "keys", "settle_args", "settle_keys", "token_args")

    def __init__(self, limits: list[Limit]):
        self.checks = tuple(c for limit in limits for c in _checks(limit))
        self.keys: list[bytes] | None = None

    def wire(self, prefix: str) -> None:
        # Static arguments pre-encoded: redis-py's packing of ~20 arguments is a visible share of an admit.
        self.keys, self.admit_args, self.token_args = [], [], []
        self.settle_keys, self.settle_args = [], []
        for check in self.checks:
            key = (prefix + check.key_suffix).encode()
            self.keys.append(key)
            if check.kind == CONCURRENCY:
                self.admit_args += (b"c", str(check.limit).encode(), b"", b"")
                self.settle_keys.append(key)
                self.settle_args += (b"c", b"", b"")
            else:
                self.admit_args += (b"g", repr(check.interval).encode(), repr(check.window).encode(), b"1")
                if check.kind == TOKENS:
                    self.token_args.append(2 + len(self.admit_args) - 1)  # after lease and lease_us


class _Plans:
    """Plans per list of limits, cached: the same few lists come back on every request."""

    MAX = 4096

    def __init__(self):
        self._cache: dict[tuple[Limit, ...], _Plan] = {}

    def get(self, limits: list[Limit]) -> _Plan:
        key = tuple(limits)
        plan = self._cache.get(key)
        if plan is None:
            if len(self._cache) >= self.MAX:
                self._cache.clear()
            plan = self._cache[key] = _Plan(limits)
        return plan


_lease_prefix = os.urandom(6).hex() + ":"
_lease_counter = itertools.count(1)


def _new_lease() -> str:
    return _lease_prefix + str(next(_lease_counter))


def _message(check: _Check, retry_after: float | None, tokens: int) -> str:
    scope = _scope(check.bucket)
    if check.kind == CONCURRENCY:
        return (f"Too many concurrent requests for {scope}: limit {check.limit} in flight. "
                f"Please try again once one of them has finished.")
    unit = "requests per min (RPM)" if check.kind == REQUESTS else "tokens per min (TPM)"
    requested = 1 if check.kind == REQUESTS else tokens
    if retry_after is None:
        return (f"Request too large for {scope} on {unit}: Limit {check.limit}, Requested {requested}. "
                f"Reduce the prompt or max_tokens.")
    return (f"Rate limit reached for {scope} on {unit}: Limit {check.limit}, Requested {requested}. "
            f"Please try again in {format_duration(retry_after)}.")


def _decide(plan: tuple[_Check, ...], tokens: int, *, ok: bool, now: float, flags, values, lease: str | None
            ) -> Decision:
    """The decision from a script's answer: per check, fits (flag) and state before taking (TAT or count).
    Refused: the refusing bucket that needs the longest wait is named, and that wait is the Retry-After."""
    tightest: dict[str, tuple[int, float, _Check]] = {}
    refusal: tuple[float, _Check] | None = None
    for check, fits, value in zip(plan, flags, values, strict=True):
        if check.kind == CONCURRENCY:
            if not fits and (refusal is None or refusal[0] < CONCURRENCY_RETRY_SECONDS):
                refusal = (CONCURRENCY_RETRY_SECONDS, check)
            continue
        cost = 1 if check.kind == REQUESTS else tokens
        tat = max(float(value), now)
        after = tat + cost * check.interval if ok else tat
        used = after - now
        remaining = min(check.capacity, max(0, math.floor((check.window - used) / check.interval + 1e-6)))
        reset = max(0.0, used / US)
        if not fits:
            retry = max(0.0, (tat + cost * check.interval - check.window - now) / US)
            if refusal is None or retry > refusal[0] or (retry == refusal[0] and refusal[1].kind == CONCURRENCY):
                refusal = (retry, check)
        best = tightest.get(check.kind)
        if best is None or (remaining, -reset) < (best[0], -best[1]):
            tightest[check.kind] = (remaining, reset, check)
    requests, token_state = tightest.get(REQUESTS), tightest.get(TOKENS)
    fields = {}
    if requests is not None:
        fields.update(limit_requests=requests[2].capacity, remaining_requests=requests[0],
                      reset_requests_s=requests[1])
    if token_state is not None:
        fields.update(limit_tokens=token_state[2].capacity, remaining_tokens=token_state[0],
                      reset_tokens_s=token_state[1])
    if ok:
        return Decision(allowed=True, lease=lease, **fields)
    retry, check = refusal
    return Decision(allowed=False, retry_after_s=retry, reason=check.kind, bucket=check.bucket,
                    message=_message(check, retry, tokens), **fields)


def _too_large(plan: tuple[_Check, ...], tokens: int) -> Decision | None:
    """A request whose estimate exceeds a tokens-per-minute limit can never be admitted: say so without a call."""
    for check in plan:
        if check.kind == TOKENS and tokens > check.limit:
            fields = {"limit_tokens": check.capacity}
            requests = next((c for c in plan if c.kind == REQUESTS), None)
            if requests is not None:
                fields["limit_requests"] = requests.capacity
            return Decision(allowed=False, reason=TOKENS, bucket=check.bucket, message=_message(check, None, tokens),
                            **fields)
    return None


def _unchecked(plan: tuple[_Check, ...]) -> Decision:
    """Fail-open answer: allowed, the limits known, their state not."""
    fields = {}
    for check in plan:
        if check.kind == REQUESTS and "limit_requests" not in fields:
            fields["limit_requests"] = check.capacity
        elif check.kind == TOKENS and "limit_tokens" not in fields:
            fields["limit_tokens"] = check.capacity
    return Decision(allowed=True, **fields)


class RateLimiter:
    """Shared rate limits. See the module docstring for the semantics."""

    lease_seconds: float

    def __init__(self, lease_seconds: float | None = None):
        if lease_seconds is None:
            lease_seconds = float(getattr(settings, "RATE_LIMIT_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be above 0")
        self.lease_seconds = lease_seconds
        self._plans = _Plans()

    async def admit(self, limits: list[Limit], *, tokens: int) -> Decision:
        """Take 1 request, `tokens` and a concurrency slot from every bucket, or nothing if any bucket refuses."""
        raise NotImplementedError

    async def settle(self, limits: list[Limit], *, estimated_tokens: int, actual_tokens: int, lease) -> None:
        """Correct the token charge from the estimate to the real count and free the concurrency slot."""
        raise NotImplementedError

    async def release(self, limits: list[Limit], lease) -> None:
        """Free the concurrency slot, keeping the estimated token charge."""
        await self.settle(limits, estimated_tokens=0, actual_tokens=0, lease=lease)

    async def close(self) -> None:
        return None


# ---- Redis --------------------------------------------------------------------------------------------------

# KEYS: one per check. ARGV: lease, lease µs, then per check 4 values: 'g', interval µs, window µs, cost
# (requests/tokens) or 'c', limit, '', '' (concurrency). Returns {ok, now µs, fits1, state1, fits2, state2, …}
# where state is the TAT before taking (GCRA) or the live slot count (concurrency).
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slack = 1.0
local out = {1, now}
local ok = 1
local tats = {}
for i = 1, #KEYS do
  local j = 3 + (i - 1) * 4
  local fits
  if ARGV[j] == 'g' then
    local tat = tonumber(redis.call('GET', KEYS[i])) or now
    if tat < now then tat = now end
    tats[i] = tat
    fits = tat + tonumber(ARGV[j + 3]) * tonumber(ARGV[j + 1]) - now <= tonumber(ARGV[j + 2]) + slack
    out[#out + 1] = fits and 1 or 0
    out[#out + 1] = math.floor(tat)
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local count = redis.call('ZCARD', KEYS[i])
    fits = count < tonumber(ARGV[j + 1])
    out[#out + 1] = fits and 1 or 0
    out[#out + 1] = count
  end
  if not fits then ok = 0 end
end
if ok == 0 then
  out[1] = 0
  return out
end
local lease_us = tonumber(ARGV[2])
for i = 1, #KEYS do
  local j = 3 + (i - 1) * 4
  if ARGV[j] == 'g' then
    local ntat = tats[i] + tonumber(ARGV[j + 3]) * tonumber(ARGV[j + 1])
    if ntat > now then
      redis.call('SET', KEYS[i], string.format('%.3f', ntat), 'PX', math.ceil((ntat - now) / 1000) + 1000)
    end
  else
    redis.call('ZADD', KEYS[i], now + lease_us, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], math.ceil(lease_us / 1000) + 1000)
  end
end
return out
"""

# KEYS: one per check to correct. ARGV: lease, then per check 3 values: 'g', interval µs, token delta (positive
# charges more, negative refunds; the bucket never goes above full) or 'c', '', '' (free the lease's slot).
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local j = 2 + (i - 1) * 3
  if ARGV[j] == 'g' then
    local delta = tonumber(ARGV[j + 2]) * tonumber(ARGV[j + 1])
    local tat = tonumber(redis.call('GET', KEYS[i]))
    if tat == nil then tat = now end
    if delta > 0 and tat < now then tat = now end
    local ntat = tat + delta
    if ntat > now then
      redis.call('SET', KEYS[i], string.format('%.3f', ntat), 'PX', math.ceil((ntat - now) / 1000) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  else
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
return 0
"""

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class RedisRateLimiter(RateLimiter):
    """Limits shared by every process through Redis. The caller owns `redis` (close() leaves it open)."""

    def __init__(self, redis, prefix: str = "cb:rl:", *, lease_seconds: float | None = None):
        super().__init__(lease_seconds)
        self.redis = redis
        self.prefix = prefix
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)
        self._down_until = 0.0
        self._lease_us = str(int(self.lease_seconds * US))

    def _skip(self) -> bool:
        return self._down_until > 0 and time.monotonic() < self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        self._down_until = time.monotonic() + REDIS_BACKOFF_SECONDS
        logger.warning("rate limiter: Redis %s failed (%s: %s); allowing without limits for %.0fs", operation,
                       type(exc).__name__, str(exc)[:200], REDIS_BACKOFF_SECONDS)

    async def admit(self, limits: list[Limit], *, tokens: int) -> Decision:
        plan = self._plans.get(limits)
        checks = plan.checks
        if not checks:
            return ALLOW
        tokens = max(0, int(tokens))
        too_large = _too_large(checks, tokens)
        if too_large is not None:
            return too_large
        if self._skip():
            return _unchecked(checks)
        if plan.keys is None:
            plan.wire(self.prefix)
        lease = _new_lease()
        args = [lease, self._lease_us, *plan.admit_args]
        for position in plan.token_args:
            args[position] = tokens
        try:
            reply = await self._admit(keys=plan.keys, args=args)
        except _REDIS_ERRORS as exc:
            self._failed("admit", exc)
            return _unchecked(checks)
        return _decide(checks, tokens, ok=reply[0] == 1, now=float(reply[1]), flags=reply[2::2],
                       values=reply[3::2], lease=lease)

    async def settle(self, limits: list[Limit], *, estimated_tokens: int, actual_tokens: int, lease) -> None:
        if lease is None or self._skip():
            return  # nothing was taken (unlimited, refused, or admitted while Redis was down)
        plan = self._plans.get(limits)
        if plan.keys is None:
            plan.wire(self.prefix)
        keys, args = plan.settle_keys, [lease, *plan.settle_args]
        delta = max(0, int(actual_tokens)) - max(0, int(estimated_tokens))
        if delta:
            keys = list(keys)
            for check, key in zip(plan.checks, plan.keys, strict=True):
                if check.kind == TOKENS:
                    keys.append(key)
                    args += (b"g", repr(check.interval).encode(), delta)
        if not keys:
            return
        try:
            await self._settle(keys=keys, args=args)
        except _REDIS_ERRORS as exc:
            self._failed("settle", exc)


# ---- In process ---------------------------------------------------------------------------------------------

def _expire(slots: dict[str, float], now: float) -> None:
    """Drop expired leases. Every lease lasts lease_seconds, so insertion order is expiry order: stop at the
    first live one (O(expired), not O(held))."""
    dead = []
    for lease, expiry in slots.items():
        if expiry > now:
            break
        dead.append(lease)
    for lease in dead:
        del slots[lease]


class LocalRateLimiter(RateLimiter):
    """The same semantics in this process's memory (embedded default: one process, no Redis)."""

    SWEEP_EVERY = 4096  # admits between sweeps of full buckets and empty slot sets

    def __init__(self, *, lease_seconds: float | None = None):
        super().__init__(lease_seconds)
        self._tats: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}  # bucket → lease → expiry
        self._admits = 0

    @staticmethod
    def _now() -> float:
        return time.monotonic_ns() / 1000

    def _sweep(self, now: float) -> None:
        for key in [key for key, tat in self._tats.items() if tat <= now]:
            del self._tats[key]
        for key, slots in list(self._slots.items()):
            _expire(slots, now)
            if not slots:
                del self._slots[key]

    async def admit(self, limits: list[Limit], *, tokens: int) -> Decision:
        plan = self._plans.get(limits).checks
        if not plan:
            return ALLOW
        tokens = max(0, int(tokens))
        too_large = _too_large(plan, tokens)
        if too_large is not None:
            return too_large
        now = self._now()
        self._admits += 1
        if self._admits % self.SWEEP_EVERY == 0:
            self._sweep(now)
        flags, values = [], []
        for check in plan:
            if check.kind == CONCURRENCY:
                slots = self._slots.get(check.key_suffix)
                if slots:
                    _expire(slots, now)
                count = len(slots) if slots else 0
                flags.append(count < check.limit)
                values.append(count)
            else:
                tat = max(self._tats.get(check.key_suffix, now), now)
                cost = 1 if check.kind == REQUESTS else tokens
                flags.append(tat + cost * check.interval - now <= check.window + SLACK_US)
                values.append(tat)
        ok = all(flags)
        lease = None
        if ok:
            lease = _new_lease()
            for check, tat in zip(plan, values, strict=True):
                if check.kind == CONCURRENCY:
                    self._slots.setdefault(check.key_suffix, {})[lease] = now + self.lease_seconds * US
                else:
                    self._tats[check.key_suffix] = tat + (1 if check.kind == REQUESTS else tokens) * check.interval
        return _decide(plan, tokens, ok=ok, now=now, flags=flags, values=values, lease=lease)

    async def settle(self, limits: list[Limit], *, estimated_tokens: int, actual_tokens: int, lease) -> None:
        if lease is None:
            return
        delta = max(0, int(actual_tokens)) - max(0, int(estimated_tokens))
        now = self._now()
        for check in self._plans.get(limits).checks:
            if check.kind == CONCURRENCY:
                slots = self._slots.get(check.key_suffix)
                if slots is not None:
                    slots.pop(lease, None)
            elif check.kind == TOKENS and delta:
                tat = self._tats.get(check.key_suffix, now)
                if delta > 0:
                    tat = max(tat, now)
                tat += delta * check.interval
                if tat > now:
                    self._tats[check.key_suffix] = tat
                else:
                    self._tats.pop(check.key_suffix, None)

    async def close(self) -> None:
        self._tats.clear()
        self._slots.clear()


# ---- Which limits apply ----------------------------------------------------------------------------------------

def _pick(value: int | None, setting: str) -> int:
    if value is None:
        value = getattr(settings, setting, 0)
    return max(0, int(value or 0))


def limits_for(key_id, tenant_id, *, key_rpm: int | None = None, key_tpm: int | None = None,
               key_concurrent: int | None = None, tenant_rpm: int | None = None, tenant_tpm: int | None = None,
               tenant_concurrent: int | None = None, global_rpm: int | None = None,
               burst: int | None = None) -> list[Limit]:
    """The buckets a request passes: per API key, per tenant, global (only those with a limit).

    None means "the default": per key RATE_LIMIT_PER_MINUTE, RATE_LIMIT_TOKENS_PER_MINUTE and
    RATE_LIMIT_CONCURRENT_REQUESTS; global RATE_LIMIT_GLOBAL_PER_MINUTE; burst BURST_ALLOWANCE; the tenant has
    no default. 0 means unlimited (also as an explicit override). Anonymous requests (no key) share one bucket.
    """
    burst = _pick(burst, "BURST_ALLOWANCE")
    key = Limit(f"key:{key_id}" if key_id is not None else "key:anonymous",
                requests_per_minute=_pick(key_rpm, "RATE_LIMIT_PER_MINUTE") or None,
                tokens_per_minute=_pick(key_tpm, "RATE_LIMIT_TOKENS_PER_MINUTE") or None,
                concurrent=_pick(key_concurrent, "RATE_LIMIT_CONCURRENT_REQUESTS") or None, burst=burst)
    tenant = None
    if tenant_id is not None:
        tenant = Limit(f"tenant:{tenant_id}", requests_per_minute=tenant_rpm or None,
                       tokens_per_minute=tenant_tpm or None, concurrent=tenant_concurrent or None, burst=burst)
    glob = Limit("global", requests_per_minute=_pick(global_rpm, "RATE_LIMIT_GLOBAL_PER_MINUTE") or None,
                 burst=burst)
    return [limit for limit in (key, tenant, glob)
            if limit is not None and (limit.requests_per_minute or limit.tokens_per_minute or limit.concurrent)]


def rate_limiter_for_settings(redis_client) -> RateLimiter:
    """The shared Redis limiter when the process has a Redis client, else the in-process one."""
    if redis_client is not None:
        return RedisRateLimiter(redis_client)
    return LocalRateLimiter()
