"""Budget enforcement on the hot path: reserve a request's worst-case cost, settle the real cost, release on failure.

Every budget has one counter per period (`cb:budget:{t<tenant>}:<budget>.<fingerprint>:<period start>`, a
hash with `used`, `reserved` and one `r:<request id>` field per open reservation) and a sorted set (`…:r`) of
those reservations' expiry times; `cb:budget:{t<tenant>}:req:<request id>` remembers whether a request is
reserved, settled or released. Money is stored as integer nano-dollars (1e-9 USD; the ledger keeps 10 decimal
places), rounded up so a counter never under-counts; Lua only ever hands Redis the decimal strings it was given,
never a number it computed, so no double rounding reaches a counter.

- `reserve` checks and books all of a request's budgets in one Lua script: for every `block` budget
  used + reserved + amount <= limit, else nothing is booked and the request is refused naming the budget;
  `notify` budgets never refuse; `downgrade` budgets ask for the cheapest capable model once
  (used + reserved) / limit reaches their threshold. Reservations expire after a TTL (a crashed process's
  reservation is swept by the next reserve on that counter).
- `settle` moves the reservation to `used` at the actual cost, once per request id (a second settle or a settle
  after `release` does nothing). It reports thresholds crossed, for alerts.
- A counter missing from Redis (first request of a period, Redis restarted or evicted it) is rebuilt from
  the ledger through `load_used(spec, period_start)`, initialised with HSETNX so concurrent rebuilders agree.
- Periods are computed in UTC; a period's counter is keyed by its start, so resets need no job.

Failure policy: budgets are a guarantee users pay for, unlike health data. When Redis (or the ledger, for a
rebuild) cannot answer, a request under a `block` budget is refused with 503 `budget_unavailable` (nothing
can prove it fits), unless BUDGET_FAIL_OPEN is set; `notify` and `downgrade` budgets are skipped with a
warning. Nothing here raises on Redis errors; settle and release failures are logged and the ledger remains
the source of truth for the next rebuild.

`RedisBudget` is shared by every process; `LocalBudget` keeps the same semantics in memory for the embedded
default (one process, no Redis).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from redis.exceptions import MaxConnectionsError, RedisError

logger = logging.getLogger("apps.billing.budgets")

UNITS_PER_USD = 10**9  # nano-dollars
_QUANTUM = Decimal(1).scaleb(-9)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PERIODS = ("daily", "weekly", "monthly", "total")
ACTIONS = ("block", "downgrade", "notify")
DEFAULT_RESERVATION_TTL_SECONDS = 600.0
STATE_GRACE_SECONDS = 86400  # how long a request id's reserved/settled/released state is remembered
COUNTER_GRACE_SECONDS = 2 * 86400  # a period's counter outlives its end by this (late settles still land)
REDIS_BACKOFF_SECONDS = 1.0
MAX_REBUILD_ROUNDS = 3


# ---- money ----------------------------------------------------------------------------------------------

def to_units(amount: Decimal | int | str) -> int:
    """USD → integer nano-dollars, rounded up (a counter may over-count by < 1e-9 USD, never under-count)."""
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    return int((value * UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def limit_units(limit: Decimal) -> int:
    """A limit rounds down: a budget never admits more than it says."""
    return int((Decimal(limit) * UNITS_PER_USD).to_integral_value(rounding=ROUND_FLOOR))


def from_units(units: int | str | bytes) -> Decimal:
    if isinstance(units, bytes):
        units = units.decode()
    return Decimal(int(units)).scaleb(-9).quantize(_QUANTUM)


# ---- periods --------------------------------------------------------------------------------------------

def period_bounds(period: str, now: datetime | None = None) -> tuple[datetime, datetime | None]:
    """[start, end) of the period containing `now`, in UTC: daily from midnight, weekly from Monday, monthly
    from the 1st; `total` runs from the epoch with no end. A naive `now` is taken as UTC."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    else:
        now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return midnight, midnight + timedelta(days=1)
    if period == "weekly":
        start = midnight - timedelta(days=midnight.weekday())
        return start, start + timedelta(days=7)
    if period == "monthly":
        start = midnight.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    if period == "total":
        return EPOCH, None
    raise ValueError(f"unknown budget period: {period!r}")


# ---- plain data -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """What the hot path knows of a budget (built from the model by `spec_from_budget`, kept in the snapshot)."""

    id: int
    limit: Decimal
    period: str
    action: str
    downgrade_threshold: Decimal = Decimal(95)
    model: str = ""
    scope: str = "tenant"
    tenant_id: int | None = None
    api_key_id: int | None = None
    user_label: str = ""
    project_label: str = ""
    alert_thresholds: tuple = (50, 80, 95)

    @property
    def counter_id(self) -> str:
        """The budget id plus a fingerprint of what it counts: changing the scope, model or period starts a new
        counter (rebuilt from the ledger) instead of carrying the old one's figures over."""
        what = f"{self.period}|{self.api_key_id or ''}|{self.user_label}|{self.project_label}|{self.model}"
        return f"{self.id}.{hashlib.sha256(what.encode()).hexdigest()[:10]}"

    def describe(self) -> str:
        return f"budget {self.id} ({scope_text(self)}, {self.period})"


def scope_text(budget) -> str:
    """What a budget counts, in words — shared by the model (admin, API) and the spec (error messages)."""
    parts = []
    if budget.api_key_id:
        parts.append(f"API key {budget.api_key_id}")
    if budget.user_label:
        parts.append(f"user {budget.user_label!r}")
    if budget.project_label:
        parts.append(f"project {budget.project_label!r}")
    if not parts:
        parts.append("tenant")
    if budget.model:
        parts.append(f"model {budget.model}")
    return ", ".join(parts)


def spec_from_budget(budget) -> BudgetSpec:
    """A Budget row → BudgetSpec (plain attribute access; no query beyond the row itself)."""
    return BudgetSpec(
        id=budget.id, limit=Decimal(budget.limit), period=budget.period, action=budget.action,
        downgrade_threshold=Decimal(budget.downgrade_threshold), model=budget.model or "",
        scope=budget.scope, tenant_id=budget.tenant_id, api_key_id=budget.api_key_id,
        user_label=budget.user_label or "", project_label=budget.project_label or "",
        alert_thresholds=tuple(budget.alert_thresholds or ()),
    )


def applicable(budgets: Iterable[BudgetSpec], *, key_id: int | None = None, user_label: str | None = None,
               project_label: str | None = None, model: str | Iterable[str] | None = None) -> list[BudgetSpec]:
    """The budgets a request counts against: every narrowing a budget sets (key, user, project, model) must
    match the request; a budget that sets none is tenant-wide. `model` may be several names (the requested one
    and the catalogue id it resolved to)."""
    models = {model} if isinstance(model, str) else set(model or ())
    out = []
    for spec in budgets:
        if spec.api_key_id is not None and spec.api_key_id != key_id:
            continue
        if spec.user_label and spec.user_label != user_label:
            continue
        if spec.project_label and spec.project_label != project_label:
            continue
        if spec.model and spec.model not in models:
            continue
        out.append(spec)
    return out


def check_alerts(spec: BudgetSpec, used_before: Decimal, used_after: Decimal) -> list:
    """Thresholds (percent of the limit) crossed by going from used_before to used_after."""
    crossed = []
    for threshold in spec.alert_thresholds:
        mark = spec.limit * Decimal(str(threshold)) / 100
        if used_before < mark <= used_after:
            crossed.append(threshold)
    return crossed


@dataclass(frozen=True, slots=True)
class AlertDue:
    budget_id: int
    period_start: datetime
    threshold: object  # int or float percent, as configured
    spent: Decimal


@dataclass(slots=True)
class Entry:
    spec: BudgetSpec
    period_start: datetime
    key: str


@dataclass(slots=True)
class Reservation:
    request_id: str
    amount: Decimal
    entries: list[Entry] = field(default_factory=list)
    downgrade: list[BudgetSpec] = field(default_factory=list)  # downgrade budgets past their threshold
    skipped: list[BudgetSpec] = field(default_factory=list)  # not checked (store unavailable; non-blocking)

    @property
    def downgrade_wanted(self) -> bool:
        return bool(self.downgrade)


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 429 budget exhausted, 503 budget cannot be checked
    code: str  # budget_exceeded | budget_unavailable
    message: str
    spec: BudgetSpec | None = None
    used: Decimal | None = None
    reserved: Decimal | None = None
    retry_after: int | None = None

    def error_fields(self) -> dict:
        """Keyword arguments for the gateway's ApiError."""
        headers = {"retry-after": str(self.retry_after)} if self.retry_after else {}
        kind = "insufficient_quota" if self.status == 429 else "server_error"
        return {"message": self.message, "status": self.status, "type": kind, "code": self.code,
                "headers": headers}


@dataclass(slots=True)
class Settlement:
    settled: bool  # False: already settled or released before, or nothing to do
    alerts: list[AlertDue] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CounterState:
    used: Decimal
    reserved: Decimal


LoadUsed = Callable[[BudgetSpec, datetime], Awaitable[Decimal]]


async def load_used_from_ledger(spec: BudgetSpec, period_start: datetime) -> Decimal:
    """The default rebuild source: the ledger's sum for the budget's scope and period, in a worker thread."""

    def query() -> Decimal:
        from django.db import close_old_connections

        from apps.billing.selectors import budget_spent

        close_old_connections()
        try:
            return budget_spent(spec.id, period_start)
        finally:
            close_old_connections()

    return await asyncio.to_thread(query)


async def record_alerts(alerts: list[AlertDue]) -> int:
    """Record a settle's alerts (BudgetAlert rows, log lines, webhooks) in a worker thread, off the event loop.
    Returns how many were new. Never raises: an alert lost to a database error is logged."""
    if not alerts:
        return 0

    def write() -> int:
        from django.db import close_old_connections

        from apps.billing.services import budget_alerts_record

        close_old_connections()
        try:
            return len(budget_alerts_record(alerts))
        finally:
            close_old_connections()

    try:
        return await asyncio.to_thread(write)
    except Exception as exc:
        logger.warning("budget alerts could not be recorded (%s: %s): %s", type(exc).__name__, str(exc)[:200],
                       [(a.budget_id, a.threshold) for a in alerts])
        return 0


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.000001')).normalize():f}"


def _exceeded(spec: BudgetSpec, amount: Decimal, used: Decimal, reserved: Decimal, end: datetime | None) -> Refusal:
    if amount > spec.limit:
        detail = f"this request may cost up to {_money(amount)}, more than the whole limit of {_money(spec.limit)}"
    else:
        detail = (f"{_money(used)} of {_money(spec.limit)} spent"
                  + (f" and {_money(reserved)} reserved by requests in flight" if reserved else "")
                  + f"; this request may cost up to {_money(amount)}")
    retry_after = None
    message = f"Budget exceeded: {spec.describe()}: {detail}."
    if end is not None:
        retry_after = max(1, int((end - datetime.now(UTC)).total_seconds() + 0.999))
        message += f" It resets at {end.strftime('%Y-%m-%dT%H:%M:%SZ')}."
    return Refusal(429, "budget_exceeded", message, spec, used, reserved, retry_after)


def _unavailable(specs: list[BudgetSpec]) -> Refusal:
    names = ", ".join(spec.describe() for spec in specs)
    return Refusal(503, "budget_unavailable",
                   f"The spending limit could not be checked right now ({names}); retry shortly.",
                   specs[0] if specs else None, retry_after=1)


def _fail_open() -> bool:
    return bool(getattr(settings, "BUDGET_FAIL_OPEN", False))


class BudgetCounters:
    """Shared interface of the Redis engine and its in-process twin. See the module docstring."""

    def __init__(self, *, load_used: LoadUsed | None = None, reservation_ttl: float | None = None):
        self.load_used = load_used or load_used_from_ledger
        if reservation_ttl is None:
            reservation_ttl = float(getattr(settings, "BUDGET_RESERVATION_TTL_SECONDS",
                                            DEFAULT_RESERVATION_TTL_SECONDS))
        self.reservation_ttl = reservation_ttl
        self._loading: dict[str, asyncio.Future] = {}

    async def reserve(self, specs: list[BudgetSpec], *, amount: Decimal, request_id: str,
                      now: datetime | None = None) -> Reservation | Refusal:
        amount = Decimal(amount)
        if amount < 0:
            raise ValueError("a reservation cannot be negative")
        if not specs:
            return Reservation(request_id, amount)
        now = now or datetime.now(UTC)
        entries = list({entry.key: entry for entry in (self._entry(spec, now) for spec in specs)}.values())
        skipped: list[BudgetSpec] = []
        for _ in range(MAX_REBUILD_ROUNDS):
            outcome = await self._try_reserve(entries, amount, request_id)
            if outcome is None:  # the store failed
                return self._degraded(entries, amount, request_id, skipped)
            if isinstance(outcome, (Reservation, Refusal)):
                if isinstance(outcome, Reservation):
                    outcome.skipped = skipped
                return outcome
            missing = [entries[i] for i in outcome]  # counters to rebuild
            results = await asyncio.gather(*(self._load(entry) for entry in missing), return_exceptions=True)
            for entry, result in zip(missing, results, strict=True):
                if isinstance(result, BaseException):
                    logger.warning("budget %s: could not load spend from the ledger (%s: %s)", entry.spec.id,
                                   type(result).__name__, str(result)[:200])
                    if entry.spec.action == "block" and not _fail_open():
                        return _unavailable([entry.spec])
                    entries.remove(entry)
                    skipped.append(entry.spec)
                elif not await self._init(entry, result):
                    return self._degraded(entries, amount, request_id, skipped)
            if not entries:
                return Reservation(request_id, amount, skipped=skipped)
        logger.warning("budget counters vanished %d times in a row while reserving", MAX_REBUILD_ROUNDS)
        return self._degraded(entries, amount, request_id, skipped)

    async def _load(self, entry: Entry) -> Decimal:
        """The ledger's figure for a missing counter. Concurrent requests of this process share one query (the
        first requests of a period all find the counter missing); shielded so one caller going away does not
        cancel it for the others."""
        task = self._loading.get(entry.key)
        if task is None:
            task = asyncio.ensure_future(self.load_used(entry.spec, entry.period_start))
            self._loading[entry.key] = task
            task.add_done_callback(lambda _, key=entry.key: self._loading.pop(key, None))
        return Decimal(await asyncio.shield(task))

    def _degraded(self, entries: list[Entry], amount: Decimal, request_id: str,
                  skipped: list[BudgetSpec]) -> Reservation | Refusal:
        blocking = [e.spec for e in entries if e.spec.action == "block"]
        if blocking and not _fail_open():
            return _unavailable(blocking)
        return Reservation(request_id, amount, skipped=skipped + [e.spec for e in entries])

    def _entry(self, spec: BudgetSpec, now: datetime) -> Entry:
        start, _ = period_bounds(spec.period, now)
        return Entry(spec, start, self.key(spec, start))

    def key(self, spec: BudgetSpec, period_start: datetime) -> str:
        return f"{spec.counter_id}:{int(period_start.timestamp())}"

    async def rebuild(self, spec: BudgetSpec, used: Decimal, *, now: datetime | None = None) -> bool:
        """Set the current period's counter to `used` unless it exists (SETNX: concurrent rebuilders agree).
        True when this call created it."""
        return await self._init(self._entry(spec, now or datetime.now(UTC)), Decimal(used)) == "created"

    # Engines implement these. `_try_reserve` returns a Reservation, a Refusal, a list of indexes of entries
    # whose counters are missing, or None when the store failed. `_init` returns "created", "exists" or None.
    async def _try_reserve(self, entries: list[Entry], amount: Decimal, request_id: str):
        raise NotImplementedError

    async def _init(self, entry: Entry, used: Decimal):
        raise NotImplementedError

    async def settle(self, reservation: Reservation, *, actual: Decimal) -> Settlement:
        raise NotImplementedError

    async def release(self, reservation: Reservation) -> bool:
        raise NotImplementedError

    async def counter(self, spec: BudgetSpec, *, now: datetime | None = None) -> CounterState | None:
        """The current period's figures (None when the counter does not exist). For tests and diagnostics."""
        raise NotImplementedError

    async def close(self) -> None:
        return None

    # shared helpers
    @staticmethod
    def _alerts(entry: Entry, before: Decimal, after: Decimal) -> list[AlertDue]:
        return [AlertDue(entry.spec.id, entry.period_start, threshold, after)
                for threshold in check_alerts(entry.spec, before, after)]

    @staticmethod
    def _counter_expiry(entry: Entry) -> int:
        _, end = period_bounds(entry.spec.period, entry.period_start)
        return 0 if end is None else int(end.timestamp()) + COUNTER_GRACE_SECONDS


# ---- Redis ----------------------------------------------------------------------------------------------

# Redis' clock in milliseconds: 13 digits, which Lua's number-to-string conversion keeps exact.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Drop reservations of counter (h, z) that expired at or before `now`.
_SWEEP = """
local function sweep(h, z, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, rid in ipairs(gone) do
    local a = redis.call('HGET', h, 'r:' .. rid)
    if a then
      redis.call('HINCRBY', h, 'reserved', '-' .. a)
      redis.call('HDEL', h, 'r:' .. rid)
    end
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end
"""

# KEYS: state, then per budget: counter hash, reservation zset.
# ARGV: amount, request id, ttl ms, state ttl ms, n, then per budget: limit, action (b|d|n), threshold (basis
# points of percent), expire-at (unix seconds, 0 = never).
# Returns {'missing', i...} | {'refused', i, used, reserved} | {'ok', downgrade flags..., then used, reserved
# of each budget}.
_RESERVE = _NOW + _SWEEP + """
local amount = ARGV[1]
local rid = ARGV[2]
local n = tonumber(ARGV[5])
local missing = {}
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2 * i], 'used') == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then
  table.insert(missing, 1, 'missing')
  return missing
end
local again = redis.call('GET', KEYS[1])
local used, reserved = {}, {}
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  sweep(h, z, now)
  local f = redis.call('HMGET', h, 'used', 'reserved')
  used[i] = f[1]
  reserved[i] = f[2] or '0'
end
if again then
  -- A retried reserve of the same request (its reply was lost): book nothing twice.
  local out = {'ok'}
  for i = 1, n do out[#out + 1] = 0 end
  for i = 1, n do out[#out + 1] = used[i]; out[#out + 1] = reserved[i] end
  return out
end
local a = tonumber(amount)
local flags = {}
for i = 1, n do
  local base = 5 + (i - 1) * 4
  local limit = tonumber(ARGV[base + 1])
  local action = ARGV[base + 2]
  local u, r = tonumber(used[i]), tonumber(reserved[i])
  if action == 'b' and u + r + a > limit then
    return {'refused', i, used[i], reserved[i]}
  end
  flags[i] = 0
  if action == 'd' and (u + r) * 10000 >= tonumber(ARGV[base + 3]) * limit then flags[i] = 1 end
end
local expiry = now + tonumber(ARGV[3])
local out = {'ok'}
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  local base = 5 + (i - 1) * 4
  redis.call('HINCRBY', h, 'reserved', amount)
  redis.call('HSET', h, 'r:' .. rid, amount)
  redis.call('ZADD', z, expiry, rid)
  if ARGV[base + 4] ~= '0' then
    redis.call('EXPIREAT', h, ARGV[base + 4])
    redis.call('EXPIREAT', z, ARGV[base + 4])
  end
  out[#out + 1] = flags[i]
end
for i = 1, n do
  local f = redis.call('HMGET', KEYS[2 * i], 'used', 'reserved')
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
end
redis.call('SET', KEYS[1], 'r', 'PX', ARGV[4])
return out
"""

# KEYS: state, then per budget: counter hash, reservation zset. ARGV: actual ('' = release), request id,
# state ttl ms, n. Returns {'dup'} when the request was settled or released before, else {'ok', then before,
# after of each budget ('' when its counter is missing: the ledger will carry the spend into the rebuild)}.
_FINISH = """
local st = redis.call('GET', KEYS[1])
if st == 's' or st == 'x' then return {'dup'} end
local actual = ARGV[1]
local rid = ARGV[2]
local n = tonumber(ARGV[4])
local out = {'ok'}
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  local a = redis.call('HGET', h, 'r:' .. rid)
  if a then
    redis.call('HINCRBY', h, 'reserved', '-' .. a)
    redis.call('HDEL', h, 'r:' .. rid)
  end
  redis.call('ZREM', z, rid)
  if actual ~= '' and redis.call('HEXISTS', h, 'used') == 1 then
    local before = redis.call('HGET', h, 'used')
    redis.call('HINCRBY', h, 'used', actual)
    out[#out + 1] = before
    out[#out + 1] = redis.call('HGET', h, 'used')
  else
    out[#out + 1] = ''
    out[#out + 1] = ''
  end
end
if actual == '' then
  redis.call('SET', KEYS[1], 'x', 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], 's', 'PX', ARGV[3])
end
return out
"""

# KEYS: counter hash. ARGV: used, expire-at (0 = never). Returns 1 when created, 0 when it existed.
_INIT = """
if redis.call('HSETNX', KEYS[1], 'used', ARGV[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'reserved', '0')
if ARGV[2] ~= '0' then redis.call('EXPIREAT', KEYS[1], ARGV[2]) end
return 1
"""

_ACTION_CODES = {"block": "b", "downgrade": "d", "notify": "n"}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBudget(BudgetCounters):
    """Counters shared by every process through Redis. The caller owns `redis` (close() leaves it open)."""

    def __init__(self, redis, *, prefix: str = "cb:budget:", load_used: LoadUsed | None = None,
                 reservation_ttl: float | None = None):
        super().__init__(load_used=load_used, reservation_ttl=reservation_ttl)
        self.redis = redis
        self.prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._finish = redis.register_script(_FINISH)
        self._init_script = redis.register_script(_INIT)
        self._down_until = 0.0

    # Every key of one call carries the tenant as a hash tag, so a Redis Cluster keeps them in one slot (a Lua
    # script may only touch keys of one slot); a request's budgets always belong to one tenant.
    def key(self, spec: BudgetSpec, period_start: datetime) -> str:
        return f"{self.prefix}{{t{spec.tenant_id or 0}}}:{super().key(spec, period_start)}"

    def _state_key(self, request_id: str, tenant_id: int | None) -> str:
        return f"{self.prefix}{{t{tenant_id or 0}}}:req:{request_id}"

    def _skip(self) -> bool:
        return self._down_until > 0 and time.monotonic() < self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        if isinstance(exc, MaxConnectionsError):
            # This process's pool is exhausted, Redis itself is fine: fail this call only, not the next second.
            logger.warning("budget counters: Redis %s failed: connection pool exhausted", operation)
            return
        self._down_until = time.monotonic() + REDIS_BACKOFF_SECONDS
        logger.warning("budget counters: Redis %s failed (%s: %s); not trying for %.0fs", operation,
                       type(exc).__name__, str(exc)[:200], REDIS_BACKOFF_SECONDS)

    def _keys(self, request_id: str, entries: list[Entry]) -> list[str]:
        keys = [self._state_key(request_id, entries[0].spec.tenant_id if entries else None)]
        for entry in entries:
            keys += [entry.key, entry.key + ":r"]
        return keys

    @property
    def _state_ttl_ms(self) -> int:
        return int((self.reservation_ttl + STATE_GRACE_SECONDS) * 1000)

    async def _try_reserve(self, entries: list[Entry], amount: Decimal, request_id: str):
        if self._skip():
            return None
        units = to_units(amount)
        args: list = [units, request_id, max(1, int(self.reservation_ttl * 1000)), self._state_ttl_ms, len(entries)]
        for entry in entries:
            spec = entry.spec
            basis_points = int((spec.downgrade_threshold * 100).to_integral_value(rounding=ROUND_CEILING))
            args += [limit_units(spec.limit), _ACTION_CODES.get(spec.action, "b"), basis_points,
                     self._counter_expiry(entry)]
        try:
            reply = await self._reserve(keys=self._keys(request_id, entries), args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("reserve", exc)
            return None
        kind = _text(reply[0])
        if kind == "missing":
            return [int(i) - 1 for i in reply[1:]]
        if kind == "refused":
            entry = entries[int(reply[1]) - 1]
            _, end = period_bounds(entry.spec.period, entry.period_start)
            return _exceeded(entry.spec, amount, from_units(reply[2]), from_units(reply[3]), end)
        n = len(entries)
        flags = reply[1:1 + n]
        downgrade = [entry.spec for entry, flag in zip(entries, flags, strict=True) if int(flag)]
        return Reservation(request_id, amount, list(entries), downgrade)

    async def _init(self, entry: Entry, used: Decimal):
        if self._skip():
            return None
        try:
            created = await self._init_script(keys=[entry.key], args=[to_units(used), self._counter_expiry(entry)])
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("rebuild", exc)
            return None
        if created:
            logger.info("budget %s: counter for the period from %s rebuilt from the ledger at %s", entry.spec.id,
                        entry.period_start.isoformat(), used)
        return "created" if created else "exists"

    async def _run_finish(self, reservation: Reservation, actual: str, operation: str):
        if not reservation.entries:
            return None
        try:
            return await self._finish(keys=self._keys(reservation.request_id, reservation.entries),
                                      args=[actual, reservation.request_id, self._state_ttl_ms,
                                            len(reservation.entries)])
        except (RedisError, OSError, TimeoutError) as exc:
            # Not skipped during backoff: a settle must land if Redis is back. The ledger still has the spend.
            self._failed(operation, exc)
            return None

    async def settle(self, reservation: Reservation, *, actual: Decimal) -> Settlement:
        actual = Decimal(actual)
        if actual < 0:
            raise ValueError("a cost cannot be negative")
        reply = await self._run_finish(reservation, str(to_units(actual)), "settle")
        if reply is None or _text(reply[0]) == "dup":
            return Settlement(False)
        alerts: list[AlertDue] = []
        for index, entry in enumerate(reservation.entries):
            before, after = _text(reply[1 + 2 * index]), _text(reply[2 + 2 * index])
            if before and after:
                alerts += self._alerts(entry, from_units(before), from_units(after))
        return Settlement(True, alerts)

    async def release(self, reservation: Reservation) -> bool:
        reply = await self._run_finish(reservation, "", "release")
        return reply is not None and _text(reply[0]) == "ok"

    async def counter(self, spec: BudgetSpec, *, now: datetime | None = None) -> CounterState | None:
        key = self._entry(spec, now or datetime.now(UTC)).key
        used, reserved = await self.redis.hmget(key, "used", "reserved")
        if used is None:
            return None
        return CounterState(from_units(used), from_units(reserved or 0))


# ---- In process -----------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Counter:
    used: int
    reserved: int = 0
    open: dict = field(default_factory=dict)  # request id → (units, expires at, monotonic)
    expires_at: float = 0.0  # wall-clock seconds; 0 = never


class LocalBudget(BudgetCounters):
    """The same semantics in this process's memory (embedded default: one process, no Redis). Check-and-book
    happens without an await in between, so the event loop makes it atomic."""

    SWEEP_EVERY = 1024

    def __init__(self, *, load_used: LoadUsed | None = None, reservation_ttl: float | None = None):
        super().__init__(load_used=load_used, reservation_ttl=reservation_ttl)
        self._counters: dict[str, _Counter] = {}
        self._states: dict[str, tuple[str, float]] = {}  # request id → (state, forget at, monotonic)
        self._ops = 0

    def _tick(self) -> None:
        self._ops += 1
        if self._ops % self.SWEEP_EVERY:
            return
        now, wall = time.monotonic(), time.time()
        for rid in [rid for rid, (_, until) in self._states.items() if until <= now]:
            del self._states[rid]
        for key in [k for k, c in self._counters.items() if c.expires_at and c.expires_at <= wall]:
            del self._counters[key]

    @staticmethod
    def _sweep(counter: _Counter, now: float) -> None:
        for rid in [rid for rid, (_, expires) in counter.open.items() if expires <= now]:
            counter.reserved -= counter.open.pop(rid)[0]

    def _state(self, request_id: str) -> str | None:
        state = self._states.get(request_id)
        if state is None or state[1] <= time.monotonic():
            return None
        return state[0]

    async def _try_reserve(self, entries: list[Entry], amount: Decimal, request_id: str):
        self._tick()
        missing = [i for i, entry in enumerate(entries) if entry.key not in self._counters]
        if missing:
            return missing
        now = time.monotonic()
        counters = [self._counters[entry.key] for entry in entries]
        for counter in counters:
            self._sweep(counter, now)
        if self._state(request_id) is not None:
            return Reservation(request_id, amount, list(entries))
        units = to_units(amount)
        downgrade = []
        for entry, counter in zip(entries, counters, strict=True):
            spec, limit = entry.spec, limit_units(entry.spec.limit)
            if spec.action == "block" and counter.used + counter.reserved + units > limit:
                _, end = period_bounds(spec.period, entry.period_start)
                return _exceeded(spec, amount, from_units(counter.used), from_units(counter.reserved), end)
            basis_points = int((spec.downgrade_threshold * 100).to_integral_value(rounding=ROUND_CEILING))
            if spec.action == "downgrade" and (counter.used + counter.reserved) * 10000 >= basis_points * limit:
                downgrade.append(spec)
        expires = now + self.reservation_ttl
        for counter in counters:
            counter.reserved += units
            counter.open[request_id] = (units, expires)
        self._states[request_id] = ("r", now + self.reservation_ttl + STATE_GRACE_SECONDS)
        return Reservation(request_id, amount, list(entries), downgrade)

    async def _init(self, entry: Entry, used: Decimal):
        if entry.key in self._counters:
            return "exists"
        self._counters[entry.key] = _Counter(to_units(used), expires_at=float(self._counter_expiry(entry)))
        return "created"

    def _finish(self, reservation: Reservation, actual: int | None) -> list | None:
        if not reservation.entries or self._state(reservation.request_id) in ("s", "x"):
            return None
        out = []
        for entry in reservation.entries:
            counter = self._counters.get(entry.key)
            if counter is None:
                out.append(None)
                continue
            opened = counter.open.pop(reservation.request_id, None)
            if opened is not None:
                counter.reserved -= opened[0]
            if actual is None:
                out.append(None)
                continue
            before = counter.used
            counter.used += actual
            out.append((before, counter.used))
        state = "x" if actual is None else "s"
        self._states[reservation.request_id] = (state, time.monotonic() + self.reservation_ttl + STATE_GRACE_SECONDS)
        return out

    async def settle(self, reservation: Reservation, *, actual: Decimal) -> Settlement:
        actual = Decimal(actual)
        if actual < 0:
            raise ValueError("a cost cannot be negative")
        figures = self._finish(reservation, to_units(actual))
        if figures is None:
            return Settlement(False)
        alerts: list[AlertDue] = []
        for entry, pair in zip(reservation.entries, figures, strict=True):
            if pair is not None:
                alerts += self._alerts(entry, from_units(pair[0]), from_units(pair[1]))
        return Settlement(True, alerts)

    async def release(self, reservation: Reservation) -> bool:
        return self._finish(reservation, None) is not None

    async def counter(self, spec: BudgetSpec, *, now: datetime | None = None) -> CounterState | None:
        counter = self._counters.get(self._entry(spec, now or datetime.now(UTC)).key)
        if counter is None:
            return None
        self._sweep(counter, time.monotonic())
        return CounterState(from_units(counter.used), from_units(counter.reserved))

    async def close(self) -> None:
        self._counters.clear()
        self._states.clear()


def budget_counters_for_settings(redis_client, *, load_used: LoadUsed | None = None) -> BudgetCounters:
    """The shared Redis engine when the process has a Redis client, else the in-process one."""
    if redis_client is not None:
        return RedisBudget(redis_client, load_used=load_used)
    return LocalBudget(load_used=load_used)
