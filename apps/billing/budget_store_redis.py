"""The budget store every process shares: counters in Redis, checked and booked by Lua scripts
(budget_reserve.lua, budget_finish.lua, budget_init.lua beside this module). See budget_store.py."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

from apps.core.redis_backoff import REDIS_ERRORS, RedisBackoff

from .budget_outcomes import AlertDue, CounterState, Entry, Reservation, Settlement, exceeded
from .budget_spec import BLOCK, DOWNGRADE, NOTIFY, BudgetSpec
from .budget_store import STATE_GRACE_SECONDS, BudgetStore, LoadUsed
from .money import from_units, limit_units, to_units
from .periods import period_bounds

logger = logging.getLogger("apps.billing.budgets")

_HERE = Path(__file__).resolve().parent
RESERVE_LUA = (_HERE / "budget_reserve.lua").read_text()
FINISH_LUA = (_HERE / "budget_finish.lua").read_text()
INIT_LUA = (_HERE / "budget_init.lua").read_text()

REDIS_BACKOFF_SECONDS = 1.0
_ACTION_CODES = {BLOCK: "b", DOWNGRADE: "d", NOTIFY: "n"}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBudget(BudgetStore):
    """Counters shared by every process through Redis. The caller owns `redis` (close() leaves it open)."""

    def __init__(self, redis, *, load_used: LoadUsed, prefix: str = "cb:budget:",
                 reservation_ttl: float | None = None):
        super().__init__(load_used=load_used, reservation_ttl=reservation_ttl)
        self.redis = redis
        self.prefix = prefix
        self._reserve = redis.register_script(RESERVE_LUA)
        self._finish = redis.register_script(FINISH_LUA)
        self._init_script = redis.register_script(INIT_LUA)
        self.backoff = RedisBackoff("budget counters", seconds=REDIS_BACKOFF_SECONDS, logger=logger)

    # Every key of one call carries the tenant as a hash tag, so a Redis Cluster keeps them in one slot (a Lua
    # script may only touch keys of one slot); a request's budgets always belong to one tenant.
    def key(self, spec: BudgetSpec, period_start: datetime) -> str:
        return f"{self.prefix}{{t{spec.tenant_id or 0}}}:{super().key(spec, period_start)}"

    def _state_key(self, request_id: str, tenant_id: int | None) -> str:
        return f"{self.prefix}{{t{tenant_id or 0}}}:req:{request_id}"

    def _keys(self, request_id: str, entries: list[Entry]) -> list[str]:
        keys = [self._state_key(request_id, entries[0].spec.tenant_id if entries else None)]
        for entry in entries:
            keys += [entry.key, entry.key + ":r"]
        return keys

    @property
    def _state_ttl_ms(self) -> int:
        return int((self.reservation_ttl + STATE_GRACE_SECONDS) * 1000)

    async def _try_reserve(self, entries: list[Entry], amount: Decimal, request_id: str):
        if self.backoff.down:
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
        except REDIS_ERRORS as exc:
            self.backoff.failed("reserve", exc)
            return None
        kind = _text(reply[0])
        if kind == "missing":
            return [int(i) - 1 for i in reply[1:]]
        if kind == "refused":
            entry = entries[int(reply[1]) - 1]
            _, end = period_bounds(entry.spec.period, entry.period_start)
            return exceeded(entry.spec, amount, from_units(reply[2]), from_units(reply[3]), end)
        n = len(entries)
        flags = reply[1:1 + n]
        downgrade = [entry.spec for entry, flag in zip(entries, flags, strict=True) if int(flag)]
        return Reservation(request_id, amount, list(entries), downgrade)

    async def _init(self, entry: Entry, used: Decimal):
        if self.backoff.down:
            return None
        try:
            created = await self._init_script(keys=[entry.key], args=[to_units(used), self._counter_expiry(entry)])
        except REDIS_ERRORS as exc:
            self.backoff.failed("rebuild", exc)
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
        except REDIS_ERRORS as exc:
            # Not skipped during backoff: a settle must land if Redis is back. The ledger still has the spend.
            self.backoff.failed(operation, exc)
            return None

    async def settle(self, reservation: Reservation, *, actual: Decimal) -> Settlement:
        reply = await self._run_finish(reservation, str(to_units(Decimal(actual))), "settle")
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
        key = self.entry(spec, now or datetime.now(UTC)).key
        used, reserved = await self.redis.hmget(key, "used", "reserved")
        if used is None:
            return None
        return CounterState(from_units(used), from_units(reserved or 0))
