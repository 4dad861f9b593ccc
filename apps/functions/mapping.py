"""Input mappings: how a trigger or a chain builds a function's input from the facts that started it.

    {"mode": "data"}                                   the payload: token data, custom event data, the output
                                                       of the function that finished (the default; also
                                                       "full", "full_data", "full_output")
    {"mode": "event"}                                  every fact (`event`, `data`, links, …)
    {"mode": "fields", "fields": {"text": "data.body", "place": "event.place"}}   dotted paths into the facts
                                                       (also "map_fields")
    {"mode": "template", "template": {"text": "{{ data.title }}: {{ data.body }}", "n": "{{ data.count }}"}}
        any JSON; each string is a Jinja template (sandboxed) over the facts, and a string that is one
        `{{ expression }}` keeps the expression's JSON type
"""

from __future__ import annotations

import re
from functools import lru_cache

from jinja2 import TemplateSyntaxError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

MODES = ("data", "event", "fields", "template")
# The original's names for the same modes.
ALIASES = {"full": "data", "full_data": "data", "full_output": "data", "map_fields": "fields"}
_ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.S)
_env = ImmutableSandboxedEnvironment(autoescape=False)  # noqa: S701 - the output is JSON data, not HTML


class MappingError(ValueError):
    pass


def mapping_problems(mapping) -> list[str]:
    """Why `mapping` cannot build an input (empty when it can); checked when a trigger or chain is saved."""
    if mapping in (None, {}):
        return []
    if not isinstance(mapping, dict):
        return ["must be an object"]
    mode = ALIASES.get(mapping.get("mode"), mapping.get("mode", "data"))
    if mode not in MODES:
        return [f"mode must be one of {', '.join(MODES)} (or {', '.join(ALIASES)})"]
    unknown = set(mapping) - {"mode", "fields", "template"}
    if unknown:
        return [f"unknown key {sorted(unknown)[0]!r}"]
    if mode == "fields":
        fields = mapping.get("fields")
        if not isinstance(fields, dict) or not fields or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in fields.items()):
            return ["fields must map input names to dotted paths (strings)"]
    if mode == "template":
        if "template" not in mapping:
            return ["template is required in template mode"]
        problems: list[str] = []
        _walk(mapping["template"], lambda text: _check(text, problems))
        return problems
    return []


def build_input(mapping: dict | None, facts: dict) -> dict:
    """The input `mapping` makes of `facts`; MappingError when the result is not an object."""
    mapping = mapping or {}
    mode = ALIASES.get(mapping.get("mode"), mapping.get("mode", "data"))
    if mode == "data":
        value = facts.get("data")
        value = {} if value is None else value
    elif mode == "event":
        value = facts
    elif mode == "fields":
        value = {name: lookup(facts, path) for name, path in mapping["fields"].items()}
    else:
        value = _walk(mapping.get("template"), lambda text: _render(text, facts))
    if not isinstance(value, dict):
        raise MappingError(f"the input mapping made a {type(value).__name__}, not an object")
    return value


def lookup(facts, path: str):
    """`a.b.0.c` in nested objects and lists; None where a step is missing."""
    value = facts
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def _walk(value, on_string):
    if isinstance(value, str):
        return on_string(value)
    if isinstance(value, dict):
        return {k: _walk(v, on_string) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, on_string) for v in value]
    return value


@lru_cache(maxsize=256)
def _compiled(text: str):
    match = _ONE_EXPRESSION.match(text)
    if match:
        return "expression", _env.compile_expression(match.group("expr").strip(), undefined_to_none=True)
    return "template", _env.from_string(text)


def _check(text: str, problems: list[str]) -> str:
    try:
        _compiled(text)
    except TemplateSyntaxError as exc:
        problems.append(f"template {text[:60]!r}: {exc.message}")
    return text


def _render(text: str, facts: dict):
    if "{" not in text:
        return text
    kind, compiled = _compiled(text)
    try:
        if kind == "expression":
            value = compiled(**facts)
            return None if isinstance(value, Undefined) else _jsonable(value)
        return compiled.render(**facts)
    except Exception as exc:  # a sandbox refusal or a type error in the template: the mapping failed
        raise MappingError(f"template {text[:60]!r}: {exc}") from None


def _jsonable(value):
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)
