"""`container`: the original's container functions (image, command, env, secret env, mounts, memory/CPU/time
limits). The configuration is accepted and stored; a run needs a container engine: the `docker` CLI talking
to `DOCKER_HOST`. Without one the run fails with `no_engine` ("no container engine configured") — nothing
is simulated. The container gets the input on stdin and in `INPUT_DATA` like a command, no network unless
`network: true`, and is killed at the function's timeout; its last stdout line (a JSON object) is the output."""

from __future__ import annotations

import os
import shutil
import subprocess

import orjson
from django.conf import settings

from ..errors import RunError
from .base import Result, RunContext, last_line_json, string_map_problems
from .command import argv_of
from .process import run_process

_KEYS = {"image", "command", "env", "mounts", "memory_mb", "cpus", "network"}


def config_problems(config: dict) -> list[str]:
    problems = []
    if not isinstance(config.get("image"), str) or not config.get("image"):
        problems.append("image is required")
    if config.get("command") is not None:
        try:
            argv = argv_of(config)
        except ValueError as exc:
            argv, problems = [], [*problems, f"command: {exc}"]
        if not all(isinstance(a, str) for a in argv):
            problems.append("command must be a string or a list of strings")
    problems += string_map_problems(config.get("env"), "env")
    mounts = config.get("mounts") or []
    if not isinstance(mounts, list) or not all(
            isinstance(m, dict) and isinstance(m.get("source"), str) and isinstance(m.get("target"), str)
            and str(m.get("target")).startswith("/") for m in mounts):
        problems.append("mounts must be a list of {source, target (absolute), read_only}")
    for name in ("memory_mb", "cpus"):
        value = config.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            problems.append(f"{name} must be a positive number")
    unknown = set(config) - _KEYS
    if unknown:
        problems.append(f"unknown key {sorted(unknown)[0]!r}")
    return problems


def docker_argv(function, ctx: RunContext, secret_env: dict, name: str) -> list[str]:
    config = function.config
    argv = ["docker", "run", "--rm", "-i", "--name", name]
    if not config.get("network"):
        argv += ["--network", "none"]
    if config.get("memory_mb"):
        argv += ["--memory", f"{int(config['memory_mb'])}m"]
    if config.get("cpus"):
        argv += ["--cpus", str(config["cpus"])]
    for mount in config.get("mounts") or []:
        spec = f"type=bind,source={mount['source']},target={mount['target']}"
        argv += ["--mount", spec + (",readonly" if mount.get("read_only", True) else "")]
    names = {**(config.get("env") or {}), **secret_env, "TRIGGER_EVENT": ctx.trigger,
             "EXECUTION_ID": ctx.execution_id, "FUNCTION_ID": ctx.function_id, "INPUT_DATA": ""}
    for key in names:
        argv += ["--env", key]  # values travel in the CLI's environment, never on its command line
    return [*argv, config["image"], *argv_of(config)]


def run(function, data: dict, ctx: RunContext) -> Result:
    engine = getattr(settings, "DOCKER_HOST", "")
    if not engine:
        raise RunError("No container engine configured: set DOCKER_HOST (and install the docker CLI) to run "
                       "container functions.", code="no_engine")
    cli = shutil.which("docker")
    if cli is None:
        raise RunError("No container engine configured: the docker CLI is not installed.", code="no_engine")
    secret_env = orjson.loads(function.secret() or "{}")
    payload = orjson.dumps(data)
    name = f"cbfn-{ctx.execution_id}-{ctx.attempt}"
    env = {"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": engine, **(function.config.get("env") or {}),
           **secret_env, "TRIGGER_EVENT": ctx.trigger, "EXECUTION_ID": ctx.execution_id,
           "FUNCTION_ID": ctx.function_id, "INPUT_DATA": payload.decode()}

    def kill():
        subprocess.run([cli, "kill", name], env=env, capture_output=True, timeout=10, check=False)  # noqa: S603

    done = run_process(docker_argv(function, ctx, secret_env, name), stdin=payload, env=env, timeout=ctx.timeout,
                       is_cancelled=ctx.is_cancelled, on_stop=kill)
    if done.returncode == 125:  # the engine itself failed (unreachable, no such image)
        raise RunError(f"The container engine failed: {done.stderr.strip()[:300]}", code="connection",
                       stdout=done.stdout, stderr=done.stderr)
    if done.returncode != 0:
        raise RunError(f"The container exited with status {done.returncode}.", code="exit_code",
                       stdout=done.stdout, stderr=done.stderr)
    output = last_line_json(done.last_line, done.stdout, done.stderr)
    return Result(output=output, stdout=done.stdout, stderr=done.stderr)
