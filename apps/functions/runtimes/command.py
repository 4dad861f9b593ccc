"""`command`: an operator-defined command line (only staff may define one), run as a subprocess.

The input is JSON on stdin and in `INPUT_DATA`, with `TRIGGER_EVENT`, `EXECUTION_ID` and `FUNCTION_ID` (the
original's variables), in a clean environment (PATH, LANG, HOME = a fresh temporary directory, which is also
the working directory, plus the function's own `env`), under resource limits set in the child before it
execs (CPU seconds, address space, file size, processes) and the function's timeout. The last non-empty
stdout line, a JSON object, is the output; stdout and stderr are kept, truncated."""

from __future__ import annotations

import math
import resource
import shlex
import signal
import tempfile

import orjson

from ..errors import RunError
from .base import Result, RunContext, last_line_json, string_map_problems
from .process import run_process

DEFAULT_LIMITS = {"cpu_seconds": None, "memory_mb": 1024, "file_size_mb": 64, "processes": 256}
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
_LIMIT_SIGNALS = {signal.SIGXCPU: "CPU time", signal.SIGXFSZ: "file size"}


def argv_of(config: dict) -> list[str]:
    command = config.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    return list(command or [])


def config_problems(config: dict) -> list[str]:
    problems = []
    command = config.get("command")
    try:
        argv = argv_of(config)
    except ValueError as exc:
        return [f"command: {exc}"]
    if not argv or not all(isinstance(a, str) and a for a in argv) or not isinstance(command, str | list):
        problems.append("command must be a non-empty command line (a string or a list of arguments)")
    problems += string_map_problems(config.get("env"), "env")
    limits = config.get("limits") or {}
    if not isinstance(limits, dict):
        problems.append("limits must be an object")
    else:
        for name, value in limits.items():
            if name not in DEFAULT_LIMITS:
                problems.append(f"limits: unknown limit {name!r} (known: {', '.join(DEFAULT_LIMITS)})")
            elif value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                problems.append(f"limits.{name} must be a positive number")
    unknown = set(config) - {"command", "env", "limits"}
    if unknown:
        problems.append(f"unknown key {sorted(unknown)[0]!r}")
    return problems


def limits_of(config: dict, timeout: float) -> dict:
    limits = {**DEFAULT_LIMITS, **(config.get("limits") or {})}
    if limits["cpu_seconds"] is None:
        limits["cpu_seconds"] = math.ceil(timeout) + 1  # a busy loop is stopped by the kernel too
    return limits


def _preexec(limits: dict):
    def apply():  # in the child, between fork and exec: only async-signal-safe work
        cpu = max(1, math.ceil(limits["cpu_seconds"]))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        memory = int(limits["memory_mb"] * 1024 * 1024)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        size = int(limits["file_size_mb"] * 1024 * 1024)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        processes = int(limits["processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    return apply


def run(function, data: dict, ctx: RunContext) -> Result:
    argv = argv_of(function.config)
    payload = orjson.dumps(data)
    limits = limits_of(function.config, ctx.timeout)
    with tempfile.TemporaryDirectory(prefix="cbfn-") as home:
        env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": home, **(function.config.get("env") or {}),
               "INPUT_DATA": payload.decode(), "TRIGGER_EVENT": ctx.trigger, "EXECUTION_ID": ctx.execution_id,
               "FUNCTION_ID": ctx.function_id}
        done = run_process(argv, stdin=payload, env=env, timeout=ctx.timeout, is_cancelled=ctx.is_cancelled,
                           cwd=home, preexec_fn=_preexec(limits))
    if done.returncode < 0 and -done.returncode in _LIMIT_SIGNALS:
        what = _LIMIT_SIGNALS[-done.returncode]
        raise RunError(f"Killed by its {what} limit.", code="resource_limit", stdout=done.stdout, stderr=done.stderr)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [""]
        raise RunError(f"Exited with status {done.returncode}: {tail[0][:300]}", code="exit_code",
                       stdout=done.stdout, stderr=done.stderr)
    output = last_line_json(done.last_line, done.stdout, done.stderr)
    return Result(output=output, stdout=done.stdout, stderr=done.stderr)
