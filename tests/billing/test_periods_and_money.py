"""Period bounds, the nano-dollar conversion and budget selection: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from apps.billing.budget_spec import BudgetSpec, applicable, check_alerts
from apps.billing.money import from_units, limit_units, to_units
from apps.billing.periods import EPOCH, period_bounds


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("period", "now", "start", "end"), [
    ("daily", utc(2026, 3, 15, 13, 45, 10), utc(2026, 3, 15), utc(2026, 3, 16)),
    ("daily", utc(2026, 3, 15), utc(2026, 3, 15), utc(2026, 3, 16)),  # midnight belongs to the new day
    ("daily", utc(2026, 12, 31, 23, 59, 59, 999999), utc(2026, 12, 31), utc(2027, 1, 1)),
    ("weekly", utc(2026, 3, 15, 12), utc(2026, 3, 9), utc(2026, 3, 16)),  # Sunday → the Monday before
    ("weekly", utc(2026, 3, 16), utc(2026, 3, 16), utc(2026, 3, 23)),  # Monday midnight starts a week
    ("weekly", utc(2026, 1, 1, 8), utc(2025, 12, 29), utc(2026, 1, 5)),  # a week across the new year
    ("monthly", utc(2026, 3, 15, 12), utc(2026, 3, 1), utc(2026, 4, 1)),
    ("monthly", utc(2026, 12, 31, 23, 59), utc(2026, 12, 1), utc(2027, 1, 1)),
    ("monthly", utc(2028, 2, 29, 10), utc(2028, 2, 1), utc(2028, 3, 1)),  # leap year
    ("monthly", utc(2026, 1, 1), utc(2026, 1, 1), utc(2026, 2, 1)),
    ("total", utc(2026, 3, 15), EPOCH, None),
])
def test_period_bounds(period, now, start, end):
    assert period_bounds(period, now) == (start, end)


def test_periods_are_utc_whatever_the_clock_of_the_caller():
    # 00:30 on 1 March in UTC+2 is still 28 February in UTC.
    plus_two = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert period_bounds("monthly", plus_two) == (utc(2026, 2, 1), utc(2026, 3, 1))
    assert period_bounds("daily", plus_two) == (utc(2026, 2, 28), utc(2026, 3, 1))
    # 23:30 on Sunday in UTC-5 is Monday in UTC: a new week.
    minus_five = datetime(2026, 3, 15, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert period_bounds("weekly", minus_five) == (utc(2026, 3, 16), utc(2026, 3, 23))
    assert period_bounds("daily", datetime(2026, 3, 15, 5)) == (utc(2026, 3, 15), utc(2026, 3, 16))  # naive = UTC
    assert period_bounds("daily", None)[0].tzinfo is UTC
    with pytest.raises(ValueError, match="unknown budget period"):
        period_bounds("yearly", utc(2026, 1, 1))


def test_money_converts_exactly_to_nano_dollars():
    assert to_units(Decimal("0.000000001")) == 1
    assert to_units(Decimal("12.345678901")) == 12_345_678_901
    assert to_units(Decimal("9000000")) == 9_000_000 * 10**9
    assert to_units(Decimal(0)) == 0
    assert to_units("0.1") == 100_000_000  # strings, never binary floats
    for text in ("0.000000001", "0.1", "0.15", "3.333333333", "1234.567890123", "9000000"):
        assert from_units(to_units(Decimal(text))) == Decimal(text)
    # Sub-nano costs round up (a counter never under-counts); limits round down (never admit more than set).
    assert to_units(Decimal("0.0000000001")) == 1
    assert to_units(Decimal("0.0000015000001")) == 1501
    assert limit_units(Decimal("0.0000015009")) == 1500
    # Sums of many small per-token costs stay exact: 0.15 USD / 1M tokens × 7 tokens, 1000 times.
    per_request = Decimal("0.00000015") * 7
    assert sum(to_units(per_request) for _ in range(1000)) == to_units(per_request * 1000) == 1_050_000
    with pytest.raises(ValueError):
        to_units(Decimal("NaN"))


def spec(id_, **kwargs) -> BudgetSpec:
    return BudgetSpec(id=id_, limit=kwargs.pop("limit", Decimal(10)), period=kwargs.pop("period", "monthly"),
                      action=kwargs.pop("action", "block"), **kwargs)


def test_applicable_selects_the_budgets_a_request_counts_against():
    budgets = [
        spec(1),  # tenant-wide
        spec(2, api_key_id=7),
        spec(3, api_key_id=8),
        spec(4, user_label="alice"),
        spec(5, user_label="bob"),
        spec(6, project_label="web"),
        spec(7, model="gpt-4o"),
        spec(8, user_label="alice", model="gpt-4o-mini"),
        spec(9, user_label="alice", project_label="web"),  # the seed's userId + projectId together
        spec(10, user_label="alice", project_label="mobile"),
    ]
    ids = [s.id for s in applicable(budgets, key_id=7, user_label="alice", project_label="web", model="gpt-4o")]
    assert ids == [1, 2, 4, 6, 7, 9]
    ids = [s.id for s in applicable(budgets, key_id=8, user_label="", project_label="", model="gpt-4o-mini")]
    assert ids == [1, 3]
    ids = [s.id for s in applicable(budgets, key_id=None, user_label="alice", project_label=None,
                                    model=["cb:cost-optimal", "gpt-4o-mini"])]
    assert ids == [1, 4, 8]
    assert applicable([], key_id=1, user_label="a", project_label="b", model="m") == []


def test_counter_identity_changes_with_what_a_budget_counts():
    base = spec(1, user_label="alice")
    assert base.counter_id == spec(1, user_label="alice", limit=Decimal(99)).counter_id  # a new limit keeps counting
    assert base.counter_id != spec(1, user_label="bob").counter_id
    assert base.counter_id != spec(1, user_label="alice", period="daily").counter_id
    assert base.counter_id != spec(1, user_label="alice", model="gpt-4o").counter_id


def test_check_alerts_reports_each_threshold_crossed():
    s = spec(1, limit=Decimal(100), alert_thresholds=(50, 80, 95))
    assert check_alerts(s, Decimal(0), Decimal("49.99")) == []
    assert check_alerts(s, Decimal(0), Decimal(50)) == [50]  # reaching the mark counts
    assert check_alerts(s, Decimal(50), Decimal(60)) == []  # already past it
    assert check_alerts(s, Decimal("49.999999999"), Decimal(96)) == [50, 80, 95]
    assert check_alerts(spec(2, limit=Decimal(3), alert_thresholds=(33.33,)), Decimal(0), Decimal("0.9999")) == [33.33]
