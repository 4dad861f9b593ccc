"""What the budget stores answer: reservations, refusals (429 exhausted / 503 cannot be checked), settlements
and the alerts a settle makes due. Plain data, shared by both stores and read by the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from .budget_spec import BudgetSpec
from .money import format_usd


@dataclass(frozen=True, slots=True)
class AlertDue:
    budget_id: int
    period_start: datetime
    threshold: object  # int or float percent, as configured
    spent: Decimal

    def as_message(self) -> dict:
        """JSON-safe ids and numbers for a Celery task (`billing.record_budget_alerts`)."""
        return {"budget_id": self.budget_id, "period_start": self.period_start.isoformat(),
                "threshold": self.threshold, "spent": str(self.spent)}

    @classmethod
    def from_message(cls, message: dict) -> AlertDue:
        return cls(int(message["budget_id"]), datetime.fromisoformat(message["period_start"]),
                   message["threshold"], Decimal(str(message["spent"])))


@dataclass(slots=True)
class Entry:
    """One budget's counter for the period a request falls in."""

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
        """Keyword arguments for the gateway's GatewayError."""
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


def exceeded(spec: BudgetSpec, amount: Decimal, used: Decimal, reserved: Decimal, end: datetime | None) -> Refusal:
    """429 budget_exceeded, saying what was spent, what is in flight and when the period resets."""
    if amount > spec.limit:
        detail = (f"this request may cost up to {format_usd(amount)}, more than the whole limit of "
                  f"{format_usd(spec.limit)}")
    else:
        detail = (f"{format_usd(used)} of {format_usd(spec.limit)} spent"
                  + (f" and {format_usd(reserved)} reserved by requests in flight" if reserved else "")
                  + f"; this request may cost up to {format_usd(amount)}")
    retry_after = None
    message = f"Budget exceeded: {spec.describe()}: {detail}."
    if end is not None:
        retry_after = max(1, int((end - datetime.now(UTC)).total_seconds() + 0.999))
        message += f" It resets at {end.strftime('%Y-%m-%dT%H:%M:%SZ')}."
    return Refusal(429, "budget_exceeded", message, spec, used, reserved, retry_after)


def unavailable(specs: list[BudgetSpec]) -> Refusal:
    """503 budget_unavailable: nothing can prove the request fits."""
    names = ", ".join(spec.describe() for spec in specs)
    return Refusal(503, "budget_unavailable",
                   f"The spending limit could not be checked right now ({names}); retry shortly.",
                   specs[0] if specs else None, retry_after=1)
