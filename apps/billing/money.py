"""Money as counters hold it: integer nano-dollars (1e-9 USD; the ledger keeps 10 decimal places).

Amounts round up (a counter may over-count by < 1e-9 USD, never under-count); limits round down (a budget
never admits more than it says). Counters are Redis integers and Lua compares them as doubles, exact below
2**53 nano-dollars (about 9.007 million USD): one amount is capped there, so no single request, refund or
rebuild can push a counter out of Redis' integer range.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

UNITS_PER_USD = 10**9  # nano-dollars
MAX_UNITS = 2**53  # the largest amount (either sign) one counter update carries
QUANTUM = Decimal(1).scaleb(-9)
ZERO = Decimal(0)


def _decimal(amount: Decimal | int | str) -> Decimal:
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    return value


def to_units(amount: Decimal | int | str) -> int:
    """USD → integer nano-dollars, rounded up, within ±MAX_UNITS."""
    units = int((_decimal(amount) * UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))
    return max(-MAX_UNITS, min(MAX_UNITS, units))


def limit_units(limit: Decimal | int | str) -> int:
    """A limit rounds down: a budget never admits more than it says."""
    units = int((_decimal(limit) * UNITS_PER_USD).to_integral_value(rounding=ROUND_FLOOR))
    return max(-MAX_UNITS, min(MAX_UNITS, units))


def from_units(units: int | str | bytes) -> Decimal:
    if isinstance(units, bytes):
        units = units.decode()
    return Decimal(int(units)).scaleb(-9).quantize(QUANTUM)


def format_usd(value: Decimal) -> str:
    """`$0.0025`: to the micro-dollar, trailing zeros dropped (for messages)."""
    return f"${value.quantize(Decimal('0.000001')).normalize():f}"
