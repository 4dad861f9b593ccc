"""`python`: a callable named by dotted path, from the modules the operator allows (FUNCTIONS_PYTHON_MODULES),
called in the worker as `fn(input)` (or `fn(input, context)` when it takes a `context` parameter) and
returning a JSON object. The timeout is enforced by waiting on a thread: a callable that overruns is reported
as timed out, but Python cannot stop it, so allowed callables must be ones that end."""

from __future__ import annotations

import importlib
import inspect
import threading

import orjson
from django.conf import settings

from ..errors import RunError
from .base import Result, RunContext


def allowed(module: str) -> bool:
    """`module` is listed, or sits under a listed `package.*`."""
    for entry in settings.FUNCTIONS_PYTHON_MODULES:
        if module == entry or (entry.endswith(".*") and module.startswith(entry[:-1])):
            return True
    return False


def resolve(path: str):
    module_name, _, attribute = str(path).rpartition(".")
    if not module_name or not attribute or attribute.startswith("_"):
        raise RunError(f"{path!r} is not a dotted path to a public callable.", code="misconfigured")
    if not allowed(module_name):
        raise RunError(f"Module {module_name!r} is not in FUNCTIONS_PYTHON_MODULES.", code="not_allowed")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RunError(f"Cannot import {module_name!r}: {exc}", code="misconfigured") from None
    target = getattr(module, attribute, None)
    # Only what the allowed module itself defines: not a class or function it imported from elsewhere.
    if not callable(target) or getattr(target, "__module__", None) != module_name:
        raise RunError(f"{path!r} is not a function defined in {module_name!r}.", code="misconfigured")
    return target


def config_problems(config: dict) -> list[str]:
    unknown = set(config) - {"callable"}
    if unknown:
        return [f"unknown key {sorted(unknown)[0]!r}"]
    try:
        resolve(config.get("callable") or "")
    except RunError as exc:
        return [f"callable: {exc.message}"]
    return []


def run(function, data: dict, ctx: RunContext) -> Result:
    target = resolve(function.config.get("callable") or "")
    try:
        takes_context = "context" in inspect.signature(target).parameters
    except (TypeError, ValueError):
        takes_context = False
    context = {"execution_id": ctx.execution_id, "function_id": ctx.function_id, "trigger": ctx.trigger,
               "attempt": ctx.attempt, "facts": ctx.facts}
    outcome: dict = {}

    def call():
        try:
            outcome["value"] = target(data, context=context) if takes_context else target(data)
        except RunError as exc:
            outcome["error"] = exc
        except Exception as exc:  # the callable's own failure is the run's result, not the worker's crash
            outcome["error"] = RunError(f"{type(exc).__name__}: {exc}"[:1000], code="exception")

    thread = threading.Thread(target=call, name=f"function-{ctx.execution_id}", daemon=True)
    thread.start()
    thread.join(ctx.timeout)
    if thread.is_alive():
        raise RunError(f"The callable did not return within {ctx.timeout:g}s.", code="timeout")
    if "error" in outcome:
        raise outcome["error"]
    value = outcome.get("value")
    if not isinstance(value, dict):
        raise RunError(f"The callable returned {type(value).__name__}, not an object.", code="bad_output")
    try:
        return Result(output=orjson.loads(orjson.dumps(value)))
    except TypeError as exc:
        raise RunError(f"The callable's result is not JSON: {exc}", code="bad_output") from None
