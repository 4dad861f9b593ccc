"""Cost-rule conditions → one rules-engine condition, compiled at save time and evaluated per request.

A rule's `conditions` is a JSON object whose keys all must hold. Each key is either
- a cost-rule shorthand (`prompt_tokens_lt`, `model_in`, `spend_today_gt`, …; see apps/billing/cost_rules.py),
  translated here into engine field tests over the request's facts, or
- a rules-engine kind in its externally tagged form (`"Expression": "prompt_tokens > 1000"`,
  `"Rule": "name"`, `"FieldIn": {"field": "task_type", "values": [...]}`, `"Or": [...]`, `"Not": {...}`, …),
  compiled by the engine as written.
An object with a `type` key is instead one internally tagged engine condition (`{"type": "Or", "conditions":
[...]}`), as the engine exports them. The translation of the shorthands:

    prompt_tokens_lt: n      → FieldLessThan prompt_tokens n        prompt_tokens_gt → FieldGreaterThan
    task_type_in / environment_in / model_in: [..] → FieldIn task_type / environment / model
                               (model_in entries with * ? [ also match as fnmatch globs: Or of the FieldIn and
                               a FieldMatches per glob, translated to an anchored RE2)
    spend_today_gt: USD      → FieldGreaterThan spend_today "USD" (spend_model picks whose spend `spend_today` is)
    simple_prompt: true      → And(FieldLessThan prompt_tokens 200, FieldEquals task_type "general")

Facts of a request (top-level names, so field paths and CEL see them bare): `model` (as requested),
`prompt_tokens`, `task_type` ("general" when none is named), `environment` (settings.ENVIRONMENT) and
`spend_today` (Decimal USD today on the rule's spend model: `spend_model`, else the requested model).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from apps.rules.engine import KINDS, Compiled, RuleError, compile_condition, mentions

SIMPLE_PROMPT_MAX_TOKENS = 200  # simple_prompt: prompt_tokens < this and task type general
SHORTHANDS = ("prompt_tokens_lt", "prompt_tokens_gt", "task_type_in", "model_in", "environment_in",
              "spend_today_gt", "spend_model", "simple_prompt")
_GLOB_CHARACTERS = frozenset("*?[")
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def engine_problems(conditions: dict, named: Mapping | None) -> list[str]:
    """What the engine finds wrong with the engine-form parts, each path naming its key ("$.Expression: …")."""
    if "type" in conditions:
        shorthand = sorted(key for key in conditions if key in SHORTHANDS)
        problems = [f"{key}: a 'type' key makes the whole object one engine condition; to combine it with "
                    "shorthands, write it externally tagged beside them ({\"Or\": [...]})" for key in shorthand]
        return problems + _problems(conditions, named)
    problems = []
    for key, body in conditions.items():
        if key in KINDS:
            problems += _problems({key: body}, named)
    return problems


def _problems(raw, named) -> list[str]:
    try:
        compile_condition(raw, named=named)
    except RuleError as exc:
        return list(exc.problems)
    return []


def translate(conditions: dict) -> list:
    """Valid `conditions` → the engine's raw condition: a list (all must hold) of field tests and engine parts."""
    if "type" in conditions:
        return [conditions]
    parts: list = []
    for key, value in conditions.items():
        if key in KINDS:
            parts.append({key: value})
        elif key == "prompt_tokens_lt":
            parts.append(_test("FieldLessThan", "prompt_tokens", value))
        elif key == "prompt_tokens_gt":
            parts.append(_test("FieldGreaterThan", "prompt_tokens", value))
        elif key == "task_type_in":
            parts.append(_member("task_type", value))
        elif key == "environment_in":
            parts.append(_member("environment", value))
        elif key == "model_in":
            parts.append(_models(value))
        elif key == "spend_today_gt":
            parts.append(_test("FieldGreaterThan", "spend_today", _amount(value)))
        elif key == "simple_prompt" and value is True:
            parts.append({"type": "And", "conditions": [
                _test("FieldLessThan", "prompt_tokens", SIMPLE_PROMPT_MAX_TOKENS),
                _test("FieldEquals", "task_type", "general")]})
    return parts


def compile_conditions(conditions: dict, named: Mapping | None = None) -> Compiled:
    """Compile valid `conditions` (cost_rules.validate_rule passed); `named`: the rule names it may reference
    (the engine's built-ins when None)."""
    return compile_condition(translate(conditions), named=named)


def mentions_spend(compiled: Compiled) -> bool:
    """Whether the rule may look at `spend_today` (so the gateway fetches and counts today's spend), directly
    or through a named rule."""
    return mentions(compiled, "spend_today")


def _amount(value):
    """A USD amount as JSON: a whole number as an int (compared with the Decimal fact directly), else the
    exact decimal string (the engine compares a Decimal with a numeric string as numbers)."""
    amount = Decimal(str(value))
    return int(amount) if amount == amount.to_integral_value() else str(amount)


def _test(kind: str, field: str, value) -> dict:
    return {"type": kind, "field": field, "value": value}


def _member(field: str, values: list) -> dict:
    return {"type": "FieldIn", "field": field, "values": list(values)}


def _models(patterns: list) -> dict:
    exact = _member("model", patterns)
    globs = [pattern for pattern in patterns if _GLOB_CHARACTERS & set(pattern)]
    if not globs:
        return exact
    return {"type": "Or", "conditions": [exact, *({"type": "FieldMatches", "field": "model",
                                                    "pattern": glob_to_re2(glob)} for glob in globs)]}


def glob_to_re2(pattern: str) -> str:
    """An fnmatch pattern (`fnmatch.fnmatchcase`: * any run, ? one character, [seq] / [!seq] a class, an
    unclosed [ literal) as an anchored RE2 pattern matching the same strings."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
                continue
            body, i = pattern[i:j], j + 1
            negated = body.startswith("!")
            if negated:
                body = body[1:]
            escaped = "".join("\\" + c if c in "\\[]^" else c for c in body)
            out.append(f"[{'^' if negated else ''}{escaped}]")
        else:
            out.append("\\" + char if char in _RE2_SPECIAL else char)
    return "^(?s:" + "".join(out) + ")$"
