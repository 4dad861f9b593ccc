"""Python functions the tests run (allowed through FUNCTIONS_PYTHON_MODULES in tests/functions/conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path

from apps.functions.errors import RunError


def flaky(data: dict, context: dict) -> dict:
    """Fails with `data.code` until attempt `data.succeed_on`; appends each attempt's time to `data.log`."""
    if data.get("log"):
        with Path(data["log"]).open("a") as handle:
            handle.write(f"{context['attempt']} {time.time()}\n")
    if context["attempt"] < data.get("succeed_on", 10**6):
        if data.get("code") == "exception":
            raise ValueError(f"attempt {context['attempt']} failed")
        raise RunError(f"attempt {context['attempt']} failed", code=data.get("code", "connection"))
    return {"attempt": context["attempt"]}


def sleep(data: dict) -> dict:
    time.sleep(data.get("seconds", 1))
    return {"slept": data.get("seconds", 1)}


def count_run(data: dict) -> dict:
    """Appends a line per run to `data.log`: how many times it really ran."""
    with Path(data["log"]).open("a") as handle:
        handle.write("ran\n")
    time.sleep(data.get("seconds", 0))
    return {"ok": True}


def describe(data: dict, context: dict) -> dict:
    """The input and the trigger that started it, to check what mappings and triggers made."""
    return {"input": data, "trigger": context["trigger"]}
