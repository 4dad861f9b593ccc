"""Transition guards through the rules engine: compiled once per (version, transition), explained per evaluation.

A version carries the named rules it was saved with, so its guards mean the same thing for every case that
runs on it."""

from __future__ import annotations

import threading
from collections import OrderedDict

from apps.rules.engine import RuleError, compile_condition, evaluate
from apps.rules.selectors import named_rules_for

_CACHE_SIZE = 4096
_compiled: OrderedDict[tuple[int, str], object] = OrderedDict()
_lock = threading.Lock()


def named_rules(*, tenant) -> dict:
    """The named rules a definition saved now may use: the built-ins and the tenant's own."""
    return dict(named_rules_for(tenant=tenant))


def guard_problems(parts: list, *, named: dict, references: set[str] | None = None) -> list[str]:
    """Why these guard pieces do not compile (unknown named condition, bad expression); empty when they do.
    The named rules they reach are added to `references`."""
    try:
        compiled = compile_condition(parts, named=named)
    except RuleError as exc:
        return list(exc.problems)
    if references is not None:
        references.update(compiled.references)
    return []


def guard_check(*, version_id: int, transition, named: dict, facts: dict) -> tuple[bool, dict]:
    """(passed, explanation) of `transition`'s guard over `facts`; no guard passes with an empty explanation."""
    if not transition.has_guard:
        return True, {"passed": True, "guard": None}
    key = (version_id, transition.id)
    with _lock:
        compiled = _compiled.get(key)
        if compiled is not None:
            _compiled.move_to_end(key)
    if compiled is None:
        compiled = compile_condition(transition.guard_parts, named=named)
        with _lock:
            _compiled[key] = compiled
            while len(_compiled) > _CACHE_SIZE:
                _compiled.popitem(last=False)
    result = evaluate(compiled, facts)
    return bool(result.passed), result.explanation
