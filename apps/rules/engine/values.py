"""Type-aware comparison of fact values with expected values, and JSON-safe rendering for explanations.

Decisions (documented in docs/architecture.md, "Rules engine"):
- Numbers are `int`, `float` and `Decimal` (never `bool`); they compare by value across those types
  (`1 == 1.0 == Decimal("1")`), exactly (floats are converted to `Decimal` through their shortest repr).
- Ordering (`>`, `>=`, `<`, `<=`): number vs number; number vs numeric string (`"100"`, `"12.5"`) compares as
  numbers, because money and counts often travel as JSON strings; string vs string compares by code point.
  Anything else (list vs number, null vs number, two numeric strings compare as strings) is *incomparable*:
  the condition fails and says why.
- Equality and membership are type-strict apart from numbers: `"1" != 1`, `true != 1`, `null` equals only
  `null`; lists and mappings compare element by element with the same rule.
"""

from __future__ import annotations

import base64
import datetime
import math
import re
from decimal import Decimal, InvalidOperation

from .fields import MISSING

_NUMERIC_STRING = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
MAX_RENDERED_STRING = 200
MAX_RENDERED_ITEMS = 20


class Incomparable(Exception):
    """Two values that no ordering relates; the message says which types met."""


def is_number(value) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def as_decimal(value) -> Decimal | None:
    """A number (or numeric string) as an exact Decimal; None for NaN, infinities and anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and len(value) <= 100 and _NUMERIC_STRING.match(value):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


_EXACT_NUMBERS = (int, Decimal)  # exact types (bool is not int here): ordered directly when finite


def equal(left, right) -> bool:
    if type(left) is str and type(right) is str:  # the common case, decided without the checks below
        return left == right
    if is_number(left) and is_number(right):
        a, b = as_decimal(left), as_decimal(right)
        if a is None or b is None:  # NaN equals nothing; infinities equal themselves
            return (not (isinstance(left, float) and math.isnan(left))) and left == right
        return a == b
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(equal(left[k], right[k]) for k in left)
    if type(left) is not type(right) and not (isinstance(left, str) and isinstance(right, str)):
        return False
    return left == right


def compare(left, right) -> int:
    """-1, 0 or 1; raises `Incomparable` with the reason when the two cannot be ordered."""
    kind_left, kind_right = type(left), type(right)
    if kind_left in _EXACT_NUMBERS and kind_right in _EXACT_NUMBERS and (
            kind_left is int or left.is_finite()) and (kind_right is int or right.is_finite()):
        return (left > right) - (left < right)  # int and Decimal compare exactly as they are
    if (is_number(left) or is_number(right)) and not (isinstance(left, bool) or isinstance(right, bool)):
        a, b = as_decimal(left), as_decimal(right)  # a numeric string meets a number here, never two strings
        if a is not None and b is not None:
            return (a > b) - (a < b)
        if is_number(left) and is_number(right):  # NaN or an infinity
            if isinstance(left, float) and math.isnan(left) or isinstance(right, float) and math.isnan(right):
                raise Incomparable("NaN is not ordered")
            return (left > right) - (left < right)
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    raise Incomparable(f"cannot order {type_name(left)} against {type_name(right)}")


def contains(container, item) -> bool:
    """Substring for strings, element for lists, key for mappings; raises `Incomparable` otherwise."""
    if isinstance(container, str):
        if not isinstance(item, str):
            raise Incomparable(f"a string contains only strings, not {type_name(item)}")
        return item in container
    if isinstance(container, (list, tuple)):
        return any(equal(element, item) for element in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    raise Incomparable(f"{type_name(container)} has no members")


def is_empty(value) -> bool:
    """Missing, null, a blank string (only whitespace), an empty list or mapping."""
    if value is MISSING or value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)):
        return not value
    return False


def type_name(value) -> str:
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def render(value, depth: int = 0):
    """`value` as JSON-safe data for an explanation: Decimals as strings, long strings and lists shortened."""
    if value is MISSING:
        return None
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_RENDERED_STRING else value[:MAX_RENDERED_STRING] + "…"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds()}s"
    if isinstance(value, bytes):
        return render(base64.b64encode(value).decode("ascii"), depth)
    if depth >= 4:
        return "…"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [render(v, depth + 1) for v in list(value)[:MAX_RENDERED_ITEMS]]
        return items + ["…"] if len(value) > MAX_RENDERED_ITEMS else items
    if isinstance(value, dict):
        keys = list(value)[:MAX_RENDERED_ITEMS]
        rendered = {str(k): render(value[k], depth + 1) for k in keys}
        if len(value) > MAX_RENDERED_ITEMS:
            rendered["…"] = f"{len(value) - MAX_RENDERED_ITEMS} more"
        return rendered
    return repr(value)[:MAX_RENDERED_STRING]
