"""One module per runtime, each with `config_problems(config) -> list[str]` (checked when a function is saved)
and `run(function, data, ctx) -> Result` (one attempt; raises RunError)."""

from __future__ import annotations

from types import ModuleType

from . import command, container, http, python
from .base import Result, RunContext

RUNTIMES: dict[str, ModuleType] = {"http": http, "python": python, "command": command, "container": container}

__all__ = ["RUNTIMES", "Result", "RunContext"]
