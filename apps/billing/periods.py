"""Budget periods: the vocabulary (used by the model's choices and the hot path alike) and their bounds.

Periods are computed in UTC; a period's counter is keyed by its start, so resets need no job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DAILY, WEEKLY, MONTHLY, TOTAL = "daily", "weekly", "monthly", "total"
PERIODS = (DAILY, WEEKLY, MONTHLY, TOTAL)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    if period == DAILY:
        return midnight, midnight + timedelta(days=1)
    if period == WEEKLY:
        start = midnight - timedelta(days=midnight.weekday())
        return start, start + timedelta(days=7)
    if period == MONTHLY:
        start = midnight.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    if period == TOTAL:
        return EPOCH, None
    raise ValueError(f"unknown budget period: {period!r}")
