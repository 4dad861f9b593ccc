"""Deployment health and circuit breaking, shared by every worker process.

A *deployment* is provider × credential × model; its id is f"{provider_id}:{credential_id or 0}:{model_id}".
For each one the store keeps a rolling window of outcomes (time buckets), consecutive failures, moving
averages (EWMA) of latency and time to first token, the upstream's rate-limit state (429 + Retry-After),
the number of requests in flight and the circuit breaker:

    closed ──(failure_threshold consecutive failures, or error rate ≥ threshold over ≥ min_requests)──▶ open
    open ──(cooldown_seconds elapsed)──▶ half_open: up to half_open_probes concurrent trial requests
    half_open ──success──▶ closed          half_open ──failure──▶ open (cooldown starts again)

A 429 is the provider saying "later", not "broken": it sets `rate_limited_until` (acquire refuses until then)
and counts as a request in the window, but neither as an error nor as a consecutive failure, so it never opens
the circuit.

`RedisHealthStore` keeps one hash per deployment (`<prefix><deployment_id>`, TTL one day, refreshed on every
write) and changes it only through Lua scripts that read Redis' own clock, so processes on hosts with skewed
clocks agree and two processes never race. `LocalHealthStore` has the same semantics in process memory for the
embedded default (no Redis). Redis trouble never reaches the request path: reads degrade to UNKNOWN, `acquire`
to "yes", writes are dropped, each with a warning, and for a second after an error the store does not even try.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger("apps.gateway.health")

KEY_TTL_SECONDS = 86400  # a deployment nobody used for a day disappears
WINDOW_BUCKETS = 6  # the rolling window is this many time buckets of window_seconds / WINDOW_BUCKETS each
MAX_RETRY_AFTER_SECONDS = 3600.0  # a bogus Retry-After must not lock a deployment out for days
DEFAULT_RETRY_AFTER_SECONDS = 1.0
REDIS_BACKOFF_SECONDS = 1.0  # after a Redis error, answer degraded without trying for this long

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
CIRCUIT_NAMES = ("closed", "open", "half_open")


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5  # consecutive failures that open the circuit
    error_rate_threshold: float = 0.5  # or: error rate over the window at/above this …
    min_requests: int = 10  # … once the window holds at least this many outcomes
    window_seconds: int = 60  # rolling window for the error rate
    cooldown_seconds: float = 30.0  # open → half-open after this
    half_open_probes: int = 1  # concurrent trial requests allowed while half-open
    ewma_alpha: float = 0.2  # weight of the newest latency/TTFT sample
    # A probe that never reports back (its process died) stops blocking the half-open circuit after this.
    probe_timeout_seconds: float = 120.0

    def __post_init__(self):
        problems = []
        if self.failure_threshold < 1:
            problems.append("failure_threshold must be at least 1")
        if self.error_rate_threshold <= 0:
            problems.append("error_rate_threshold must be above 0")
        if self.min_requests < 1:
            problems.append("min_requests must be at least 1")
        if self.window_seconds <= 0:
            problems.append("window_seconds must be above 0")
        if self.cooldown_seconds < 0:
            problems.append("cooldown_seconds must not be negative")
        if self.half_open_probes < 1:
            problems.append("half_open_probes must be at least 1")
        if not 0 < self.ewma_alpha <= 1:
            problems.append("ewma_alpha must be in (0, 1]")
        if self.probe_timeout_seconds <= 0:
            problems.append("probe_timeout_seconds must be above 0")
        if problems:
            raise ValueError("invalid circuit breaker configuration: " + "; ".join(problems))

    @property
    def bucket_seconds(self) -> float:
        return self.window_seconds / WINDOW_BUCKETS

    @classmethod
    def from_settings(cls) -> BreakerConfig:
        default = cls()
        return cls(
            failure_threshold=int(getattr(settings, "CIRCUIT_FAILURE_THRESHOLD", default.failure_threshold)),
            error_rate_threshold=float(getattr(settings, "CIRCUIT_ERROR_RATE_THRESHOLD",
                                               default.error_rate_threshold)),
            min_requests=int(getattr(settings, "CIRCUIT_MIN_REQUESTS", default.min_requests)),
            window_seconds=getattr(settings, "CIRCUIT_WINDOW_SECONDS", default.window_seconds),
            cooldown_seconds=float(getattr(settings, "CIRCUIT_COOLDOWN_SECONDS", default.cooldown_seconds)),
            half_open_probes=int(getattr(settings, "CIRCUIT_HALF_OPEN_PROBES", default.half_open_probes)),
            ewma_alpha=float(getattr(settings, "CIRCUIT_EWMA_ALPHA", default.ewma_alpha)),
            probe_timeout_seconds=float(getattr(settings, "CIRCUIT_PROBE_TIMEOUT_SECONDS",
                                                default.probe_timeout_seconds)),
        )


@dataclass(frozen=True, slots=True)
class HealthStats:
    requests: int  # outcomes in the rolling window
    errors: int
    error_rate: float  # errors / requests, 0.0 when requests == 0
    consecutive_failures: int
    latency_ms: float | None  # EWMA of whole-request latency; None = never measured
    ttft_ms: float | None  # EWMA of time to first token (streams); None = never measured
    circuit: str  # "closed" | "open" | "half_open"
    rate_limited_until: float | None  # epoch seconds (this host's clock), from 429 Retry-After
    inflight: int

    @property
    def available(self) -> bool:
        """Circuit not open (half-open admits probes) and not rate limited right now."""
        if self.circuit == "open":
            return False
        return self.rate_limited_until is None or time.time() >= self.rate_limited_until


UNKNOWN = HealthStats(0, 0, 0.0, 0, None, None, "closed", None, 0)


def _retry_after(retry_after: float | None) -> float:
    if not retry_after or retry_after <= 0 or math.isnan(retry_after):
        return DEFAULT_RETRY_AFTER_SECONDS
    return min(float(retry_after), MAX_RETRY_AFTER_SECONDS)


# Scalar fields of a deployment's hash and how to read them (bucket counters r:/e: are handled apart).
_FIELDS = {"st": int, "oa": float, "pi": int, "pa": float, "rl": float, "inf": int, "cf": int, "lat": float,
           "ttft": float}


class _Entry:
    """One deployment's state: the fields of the Redis hash, or the local store's record."""

    __slots__ = ("buckets", "cf", "inf", "lat", "oa", "pa", "pi", "rl", "st", "touched", "ttft")

    def __init__(self):
        self.st = CLOSED  # stored circuit state; OPEN past its cooldown is effectively HALF_OPEN
        self.oa = 0.0  # opened at
        self.pi = 0  # probes in flight (meaningful in HALF_OPEN)
        self.pa = 0.0  # last probe acquired at
        self.rl: float | None = None  # rate limited until
        self.inf = 0
        self.cf = 0
        self.lat: float | None = None
        self.ttft: float | None = None
        self.buckets: dict[int, list[int]] = {}  # bucket index → [requests, errors]
        self.touched = 0.0

    @classmethod
    def from_redis(cls, raw: dict) -> _Entry:
        entry = cls()
        for key, value in raw.items():
            name = key.decode() if isinstance(key, bytes) else key
            if name[:2] in ("r:", "e:"):
                counts = entry.buckets.setdefault(int(name[2:]), [0, 0])
                counts[0 if name[0] == "r" else 1] = int(value)
            elif name in _FIELDS:
                setattr(entry, name, _FIELDS[name](value))
        return entry

    def window(self, now: float, config: BreakerConfig) -> tuple[int, int]:
        low = math.floor(now / config.bucket_seconds) - WINDOW_BUCKETS + 1
        requests = errors = 0
        for index, (r, e) in self.buckets.items():
            if index >= low:
                requests += r
                errors += e
        return requests, errors

    def circuit(self, now: float, config: BreakerConfig) -> int:
        if self.st == OPEN and now >= self.oa + config.cooldown_seconds:
            return HALF_OPEN
        return self.st

    def stats(self, now: float, config: BreakerConfig, clock_offset: float = 0.0) -> HealthStats:
        requests, errors = self.window(now, config)
        rate_limited_until = self.rl + clock_offset if self.rl is not None and self.rl > now else None
        return HealthStats(
            requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
            consecutive_failures=self.cf, latency_ms=self.lat, ttft_ms=self.ttft,
            circuit=CIRCUIT_NAMES[self.circuit(now, config)], rate_limited_until=rate_limited_until,
            inflight=self.inf,
        )


class HealthStore:
    """Per-deployment health and circuit breaker. See the module docstring for the semantics."""

    config: BreakerConfig

    async def stats(self, deployment_ids: list[str]) -> dict[str, HealthStats]:
        """Health of many deployments at once (one round trip); unknown ids are UNKNOWN."""
        raise NotImplementedError

    async def acquire(self, deployment_id: str) -> bool:
        """May this deployment take a request now? If so, it is counted in flight (and may hold a probe slot)."""
        raise NotImplementedError

    async def record_success(self, deployment_id: str, *, latency_ms: float, ttft_ms: float | None = None) -> None:
        raise NotImplementedError

    async def record_failure(self, deployment_id: str, *, retry_after: float | None = None,
                             rate_limited: bool = False, latency_ms: float | None = None) -> None:
        raise NotImplementedError

    async def known(self) -> list[str]:
        """Deployments that have health data (for /metrics and /health, not the request path)."""
        return []

    async def record_successes(self, samples: list[tuple[str, float, float | None]]) -> None:
        """Several successes (deployment, latency_ms, ttft_ms) at once; stores may batch them."""
        for deployment_id, latency_ms, ttft_ms in samples:
            await self.record_success(deployment_id, latency_ms=latency_ms, ttft_ms=ttft_ms)

    async def release(self, deployment_id: str) -> None:
        """The request ended with no outcome (the client went away)."""
        raise NotImplementedError

    async def reset(self, deployment_id: str) -> None:
        """Forget everything about the deployment."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


# ---- Redis --------------------------------------------------------------------------------------------------

_PRELUDE = """
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# ARGV: cooldown, probes, probe_timeout, ttl. Returns 1 (granted) or 0.
_ACQUIRE = _PRELUDE + """
local h = redis.call('HMGET', key, 'st', 'oa', 'pi', 'pa', 'rl')
local rl = tonumber(h[5])
if rl and now < rl then return 0 end
local st = tonumber(h[1]) or 0
if st == 0 then
  redis.call('HINCRBY', key, 'inf', 1)
  redis.call('EXPIRE', key, ARGV[4])
  return 1
end
local probes = tonumber(ARGV[2])
local pi = tonumber(h[3]) or 0
if st == 1 then
  if now < (tonumber(h[2]) or 0) + tonumber(ARGV[1]) then return 0 end
  pi = 0
elseif pi >= probes and now - (tonumber(h[4]) or 0) >= tonumber(ARGV[3]) then
  pi = 0
end
if pi >= probes then return 0 end
redis.call('HSET', key, 'st', 2, 'pi', pi + 1, 'pa', now)
redis.call('HINCRBY', key, 'inf', 1)
redis.call('EXPIRE', key, ARGV[4])
return 1
"""

# ARGV: kind ('s' success | 'f' failure | 'r' rate limited), latency|'', ttft|'', retry_after, alpha, cooldown,
# failure_threshold, error_rate_threshold, min_requests, bucket_seconds, buckets, ttl. Returns the stored state.
_RECORD = _PRELUDE + """
local kind = ARGV[1]
local lat_sample = tonumber(ARGV[2])
local ttft_sample = tonumber(ARGV[3])
local alpha = tonumber(ARGV[5])
local cur = math.floor(now / tonumber(ARGV[10]))
local low = cur - tonumber(ARGV[11]) + 1
local raw = redis.call('HGETALL', key)
local f = {}
local req, err = 0, 0
local stale = {}
for i = 1, #raw, 2 do
  local k = raw[i]
  local p = string.sub(k, 1, 2)
  if p == 'r:' or p == 'e:' then
    if tonumber(string.sub(k, 3)) < low then
      stale[#stale + 1] = k
    elseif p == 'r:' then
      req = req + tonumber(raw[i + 1])
    else
      err = err + tonumber(raw[i + 1])
    end
  else
    f[k] = raw[i + 1]
  end
end
if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
local stored = tonumber(f['st']) or 0
local st = stored
if st == 1 and now >= (tonumber(f['oa']) or 0) + tonumber(ARGV[6]) then st = 2 end
if (tonumber(f['inf']) or 0) > 0 then redis.call('HINCRBY', key, 'inf', -1) end
local bucket = tostring(cur)
redis.call('HINCRBY', key, 'r:' .. bucket, 1)
req = req + 1
local function ewma(old, sample)
  if old == nil then return sample end
  return alpha * sample + (1 - alpha) * old
end
if lat_sample then redis.call('HSET', key, 'lat', ewma(tonumber(f['lat']), lat_sample)) end
if kind == 's' then
  if ttft_sample then redis.call('HSET', key, 'ttft', ewma(tonumber(f['ttft']), ttft_sample)) end
  redis.call('HSET', key, 'cf', 0)
  redis.call('HDEL', key, 'rl')
  if st == 2 then
    stored = 0
    redis.call('HSET', key, 'st', 0, 'pi', 0)
    redis.call('HDEL', key, 'oa', 'pa')
  end
elseif kind == 'r' then
  redis.call('HSET', key, 'rl', now + tonumber(ARGV[4]))
  if stored == 2 and (tonumber(f['pi']) or 0) > 0 then redis.call('HINCRBY', key, 'pi', -1) end
else
  redis.call('HINCRBY', key, 'e:' .. bucket, 1)
  err = err + 1
  local cf = redis.call('HINCRBY', key, 'cf', 1)
  if st == 2 or (st == 0 and (cf >= tonumber(ARGV[7]) or
      (req >= tonumber(ARGV[9]) and err / req >= tonumber(ARGV[8])))) then
    stored = 1
    redis.call('HSET', key, 'st', 1, 'oa', now, 'pi', 0)
  end
end
redis.call('EXPIRE', key, ARGV[12])
return stored
"""

# Returns nothing useful. Never creates the key.
_RELEASE = """
local key = KEYS[1]
local h = redis.call('HMGET', key, 'st', 'pi', 'inf')
if (tonumber(h[3]) or 0) > 0 then redis.call('HINCRBY', key, 'inf', -1) end
if tonumber(h[1]) == 2 and (tonumber(h[2]) or 0) > 0 then redis.call('HINCRBY', key, 'pi', -1) end
return 0
"""


class RedisHealthStore(HealthStore):
    """Health shared by every process through Redis. The caller owns `redis` (close() leaves it open)."""

    def __init__(self, redis, config: BreakerConfig, prefix: str = "cb:health:"):
        self.redis = redis
        self.config = config
        self.prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE)
        self._record = redis.register_script(_RECORD)
        self._release = redis.register_script(_RELEASE)
        self._down_until = 0.0
        c = config
        self._acquire_args = (c.cooldown_seconds, c.half_open_probes, c.probe_timeout_seconds, KEY_TTL_SECONDS)
        self._record_args = (c.ewma_alpha, c.cooldown_seconds, c.failure_threshold, c.error_rate_threshold,
                             c.min_requests, c.bucket_seconds, WINDOW_BUCKETS, KEY_TTL_SECONDS)

    def key(self, deployment_id: str) -> str:
        return self.prefix + deployment_id

    def _skip(self) -> bool:
        return self._down_until > 0 and time.monotonic() < self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        self._down_until = time.monotonic() + REDIS_BACKOFF_SECONDS
        logger.warning("health store: Redis %s failed (%s: %s); degrading for %.0fs", operation,
                       type(exc).__name__, str(exc)[:200], REDIS_BACKOFF_SECONDS)

    async def stats(self, deployment_ids: list[str]) -> dict[str, HealthStats]:
        if not deployment_ids:
            return {}
        if self._skip():
            return dict.fromkeys(deployment_ids, UNKNOWN)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.time()
            for deployment_id in deployment_ids:
                pipe.hgetall(self.key(deployment_id))
            results = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("stats", exc)
            return dict.fromkeys(deployment_ids, UNKNOWN)
        seconds, micros = results[0]
        now = seconds + micros / 1e6
        offset = time.time() - now  # rate_limited_until is reported on this host's clock
        out = {}
        for deployment_id, raw in zip(deployment_ids, results[1:], strict=True):
            out[deployment_id] = _Entry.from_redis(raw).stats(now, self.config, offset) if raw else UNKNOWN
        return out

    async def acquire(self, deployment_id: str) -> bool:
        if self._skip():
            return True
        try:
            return bool(await self._acquire(keys=[self.key(deployment_id)], args=self._acquire_args))
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("acquire", exc)
            return True

    async def _record_outcome(self, deployment_id: str, kind: str, latency_ms, ttft_ms, retry_after) -> None:
        if self._skip():
            return
        args = (kind, "" if latency_ms is None else float(latency_ms), "" if ttft_ms is None else float(ttft_ms),
                retry_after, *self._record_args)
        try:
            await self._record(keys=[self.key(deployment_id)], args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("record", exc)

    async def record_success(self, deployment_id: str, *, latency_ms: float, ttft_ms: float | None = None) -> None:
        await self._record_outcome(deployment_id, "s", latency_ms, ttft_ms, 0)

    async def known(self) -> list[str]:
        if self._skip():
            return []
        try:
            return [key.decode()[len(self.prefix):] if isinstance(key, bytes) else key[len(self.prefix):]
                    async for key in self.redis.scan_iter(match=self.prefix + "*", count=1000)]
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("scan", exc)
            return []

    async def record_successes(self, samples: list[tuple[str, float, float | None]]) -> None:
        """One pipeline for many successes: the gateway flushes them in the background, off the request path."""
        if not samples or self._skip():
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for deployment_id, latency_ms, ttft_ms in samples:
                args = ("s", float(latency_ms), "" if ttft_ms is None else float(ttft_ms), 0, *self._record_args)
                await self._record(keys=[self.key(deployment_id)], args=args, client=pipe)
            await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("record", exc)

    async def record_failure(self, deployment_id: str, *, retry_after: float | None = None,
                             rate_limited: bool = False, latency_ms: float | None = None) -> None:
        if rate_limited:
            await self._record_outcome(deployment_id, "r", latency_ms, None, _retry_after(retry_after))
        else:
            await self._record_outcome(deployment_id, "f", latency_ms, None, 0)

    async def release(self, deployment_id: str) -> None:
        if self._skip():
            return
        try:
            await self._release(keys=[self.key(deployment_id)], args=[])
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("release", exc)

    async def reset(self, deployment_id: str) -> None:
        # An admin action: errors propagate so the admin learns the reset did not happen.
        await self.redis.delete(self.key(deployment_id))

    async def close(self) -> None:
        return None


# ---- In process ---------------------------------------------------------------------------------------------

class LocalHealthStore(HealthStore):
    """The same semantics in this process's memory (embedded default: one process, no Redis)."""

    SWEEP_EVERY = 1024  # writes between sweeps of deployments idle for KEY_TTL_SECONDS

    def __init__(self, config: BreakerConfig | None = None):
        self.config = config or BreakerConfig()
        self._entries: dict[str, _Entry] = {}
        self._writes = 0

    async def known(self) -> list[str]:
        return list(self._entries)

    def _entry(self, deployment_id: str, now: float) -> _Entry:
        entry = self._entries.get(deployment_id)
        if entry is None:
            entry = self._entries[deployment_id] = _Entry()
        entry.touched = now
        self._writes += 1
        if self._writes % self.SWEEP_EVERY == 0:
            self._sweep(now)
        return entry

    def _sweep(self, now: float) -> None:
        dead = [key for key, entry in self._entries.items() if entry.touched < now - KEY_TTL_SECONDS]
        for key in dead:
            del self._entries[key]

    async def stats(self, deployment_ids: list[str]) -> dict[str, HealthStats]:
        now = time.time()
        out = {}
        for deployment_id in deployment_ids:
            entry = self._entries.get(deployment_id)
            out[deployment_id] = entry.stats(now, self.config) if entry is not None else UNKNOWN
        return out

    async def acquire(self, deployment_id: str) -> bool:
        now = time.time()
        entry = self._entries.get(deployment_id)
        if entry is None or (entry.st == CLOSED and (entry.rl is None or now >= entry.rl)):
            self._entry(deployment_id, now).inf += 1
            return True
        if entry.rl is not None and now < entry.rl:
            return False
        config = self.config
        if entry.st == OPEN:
            if now < entry.oa + config.cooldown_seconds:
                return False
            entry.st, entry.pi = HALF_OPEN, 0
        elif entry.pi >= config.half_open_probes and now - entry.pa >= config.probe_timeout_seconds:
            entry.pi = 0  # the probes never reported back
        if entry.pi >= config.half_open_probes:
            return False
        entry.pi += 1
        entry.pa = now
        self._entry(deployment_id, now).inf += 1
        return True

    def _outcome(self, deployment_id: str, now: float, latency_ms: float | None) -> tuple[_Entry, int, int]:
        """Common bookkeeping of every outcome: returns (entry, effective state, window requests, bucket)."""
        entry = self._entry(deployment_id, now)
        config = self.config
        bucket = math.floor(now / config.bucket_seconds)
        low = bucket - WINDOW_BUCKETS + 1
        for index in [index for index in entry.buckets if index < low]:
            del entry.buckets[index]
        state = entry.circuit(now, config)
        if entry.inf > 0:
            entry.inf -= 1
        entry.buckets.setdefault(bucket, [0, 0])[0] += 1
        if latency_ms is not None:
            entry.lat = self._ewma(entry.lat, latency_ms)
        return entry, state, bucket

    def _ewma(self, old: float | None, sample: float) -> float:
        sample = float(sample)
        if old is None:
            return sample
        alpha = self.config.ewma_alpha
        return alpha * sample + (1 - alpha) * old

    async def record_success(self, deployment_id: str, *, latency_ms: float, ttft_ms: float | None = None) -> None:
        entry, state, _ = self._outcome(deployment_id, time.time(), latency_ms)
        if ttft_ms is not None:
            entry.ttft = self._ewma(entry.ttft, ttft_ms)
        entry.cf = 0
        entry.rl = None
        if state == HALF_OPEN:
            entry.st, entry.pi, entry.oa, entry.pa = CLOSED, 0, 0.0, 0.0

    async def record_failure(self, deployment_id: str, *, retry_after: float | None = None,
                             rate_limited: bool = False, latency_ms: float | None = None) -> None:
        now = time.time()
        entry, state, bucket = self._outcome(deployment_id, now, latency_ms)
        if rate_limited:
            entry.rl = now + _retry_after(retry_after)
            if entry.st == HALF_OPEN and entry.pi > 0:
                entry.pi -= 1
            return
        entry.buckets[bucket][1] += 1
        entry.cf += 1
        config = self.config
        if state == HALF_OPEN:
            opens = True
        elif state == CLOSED:
            requests, errors = entry.window(now, config)
            opens = entry.cf >= config.failure_threshold or (
                requests >= config.min_requests and errors / requests >= config.error_rate_threshold)
        else:
            opens = False
        if opens:
            entry.st, entry.oa, entry.pi = OPEN, now, 0

    async def release(self, deployment_id: str) -> None:
        entry = self._entries.get(deployment_id)
        if entry is None:
            return
        if entry.inf > 0:
            entry.inf -= 1
        if entry.st == HALF_OPEN and entry.pi > 0:
            entry.pi -= 1

    async def reset(self, deployment_id: str) -> None:
        self._entries.pop(deployment_id, None)

    async def close(self) -> None:
        self._entries.clear()


def health_store_for_settings(redis_client) -> HealthStore:
    """The shared Redis store when the process has a Redis client, else the in-process one."""
    config = BreakerConfig.from_settings()
    if redis_client is not None:
        return RedisHealthStore(redis_client, config)
    return LocalHealthStore(config)
