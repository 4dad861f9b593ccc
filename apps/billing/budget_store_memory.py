"""The budget store of the embedded default (one process, no Redis): the Redis store's semantics in this
process's memory. Check-and-book happens without an await in between, so the event loop makes it atomic."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal

from .budget_outcomes import AlertDue, CounterState, Entry, Reservation, Settlement, exceeded
from .budget_spec import BLOCK, DOWNGRADE, BudgetSpec
from .budget_store import STATE_GRACE_SECONDS, BudgetStore, LoadUsed
from .money import from_units, limit_units, to_units
from .periods import period_bounds


@dataclass(slots=True)
class _Counter:
    used: int
    reserved: int = 0
    open: dict = field(default_factory=dict)  # request id → (units, expires at, monotonic)
    expires_at: float = 0.0  # wall-clock seconds; 0 = never


class LocalBudget(BudgetStore):
    """See the module docstring."""

    SWEEP_EVERY = 1024

    def __init__(self, *, load_used: LoadUsed, reservation_ttl: float | None = None):
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
            if spec.action == BLOCK and counter.used + counter.reserved + units > limit:
                _, end = period_bounds(spec.period, entry.period_start)
                return exceeded(spec, amount, from_units(counter.used), from_units(counter.reserved), end)
            basis_points = int((spec.downgrade_threshold * 100).to_integral_value(rounding=ROUND_CEILING))
            if spec.action == DOWNGRADE and (counter.used + counter.reserved) * 10000 >= basis_points * limit:
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
        figures = self._finish(reservation, to_units(Decimal(actual)))
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
        counter = self._counters.get(self.entry(spec, now or datetime.now(UTC)).key)
        if counter is None:
            return None
        self._sweep(counter, time.monotonic())
        return CounterState(from_units(counter.used), from_units(counter.reserved))

    async def close(self) -> None:
        self._counters.clear()
        self._states.clear()
