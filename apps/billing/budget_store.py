"""Budget enforcement on the hot path: reserve a request's worst-case cost, settle the real cost, release on failure.

Every budget has one counter per period (`cb:budget:{t<tenant>}:<budget>.<fingerprint>:<period start>`, a
hash with `used`, `reserved` and one `r:<request id>` field per open reservation) and a sorted set (`…:r`) of
those reservations' expiry times; `cb:budget:{t<tenant>}:req:<request id>` remembers whether a request is
reserved, settled or released. Money is integer nano-dollars (`money.py`); Lua only ever hands Redis the
decimal strings it was given, never a number it computed, so no double rounding reaches a counter.

- `reserve` checks and books all of a request's budgets at once: for every `block` budget
  used + reserved + amount <= limit, else nothing is booked and the request is refused naming the budget;
  `notify` budgets never refuse; `downgrade` budgets ask for the cheapest capable model once
  (used + reserved) / limit reaches their threshold. Reservations expire after a TTL (a crashed process's
  reservation is swept by the next reserve on that counter).
- `settle` moves the reservation to `used` at the actual cost (zero and negative refunds included), once per
  request id (a second settle or a settle after `release` does nothing). It reports thresholds crossed.
- A counter missing from the store (first request of a period, Redis restarted or evicted it) is rebuilt
  through `load_used(spec, period_start)` (the ledger: `budget_bridge.load_used_from_ledger`), initialised
  with HSETNX so concurrent rebuilders agree.

Failure policy: budgets are a guarantee users pay for, unlike health data. When Redis (or the ledger, for a
rebuild) cannot answer, a request under a `block` budget is refused with 503 `budget_unavailable` (nothing
can prove it fits), unless BUDGET_FAIL_OPEN is set; `notify` and `downgrade` budgets are skipped with a
warning. Only a connection failure makes the Redis store back off (`apps.core.redis_backoff`); a script
error fails its own call and is logged. Nothing here raises on Redis errors; settle and release failures are
logged and the ledger remains the source of truth for the next rebuild.

`RedisBudget` (budget_store_redis.py) is shared by every process; `LocalBudget` (budget_store_memory.py) keeps
the same semantics in memory for the embedded default (one process, no Redis).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from .budget_outcomes import AlertDue, CounterState, Entry, Refusal, Reservation, Settlement, unavailable
from .budget_spec import BLOCK, BudgetSpec, check_alerts
from .periods import period_bounds

logger = logging.getLogger("apps.billing.budgets")

DEFAULT_RESERVATION_TTL_SECONDS = 600.0
STATE_GRACE_SECONDS = 86400  # how long a request id's reserved/settled/released state is remembered
COUNTER_GRACE_SECONDS = 2 * 86400  # a period's counter outlives its end by this (late settles still land)
MAX_REBUILD_ROUNDS = 3

LoadUsed = Callable[[BudgetSpec, datetime], Awaitable[Decimal]]


def fail_open() -> bool:
    return bool(getattr(settings, "BUDGET_FAIL_OPEN", False))


class BudgetStore:
    """Shared interface of the Redis store and its in-process twin. See the module docstring."""

    def __init__(self, *, load_used: LoadUsed, reservation_ttl: float | None = None):
        self.load_used = load_used
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
        entries = list({entry.key: entry for entry in (self.entry(spec, now) for spec in specs)}.values())
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
                    if entry.spec.action == BLOCK and not fail_open():
                        return unavailable([entry.spec])
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
        blocking = [e.spec for e in entries if e.spec.action == BLOCK]
        if blocking and not fail_open():
            return unavailable(blocking)
        return Reservation(request_id, amount, skipped=skipped + [e.spec for e in entries])

    def entry(self, spec: BudgetSpec, now: datetime | None = None) -> Entry:
        """The counter `spec` uses for the period containing `now` (default: now)."""
        start, _ = period_bounds(spec.period, now or datetime.now(UTC))
        return Entry(spec, start, self.key(spec, start))

    def key(self, spec: BudgetSpec, period_start: datetime) -> str:
        return f"{spec.counter_id}:{int(period_start.timestamp())}"

    async def rebuild(self, spec: BudgetSpec, used: Decimal, *, now: datetime | None = None) -> bool:
        """Set the current period's counter to `used` unless it exists (SETNX: concurrent rebuilders agree).
        True when this call created it."""
        return await self._init(self.entry(spec, now), Decimal(used)) == "created"

    # Stores implement these. `_try_reserve` returns a Reservation, a Refusal, a list of indexes of entries
    # whose counters are missing, or None when the store failed. `_init` returns "created", "exists" or None.
    async def _try_reserve(self, entries: list[Entry], amount: Decimal, request_id: str):
        raise NotImplementedError

    async def _init(self, entry: Entry, used: Decimal):
        raise NotImplementedError

    async def settle(self, reservation: Reservation, *, actual: Decimal) -> Settlement:
        """Book the actual cost (any finite amount: zero, a negative refund, a huge one) once per request."""
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
