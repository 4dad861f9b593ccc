"""Running a child process for a function: input on stdin, a deadline, cancellation, output from stdout."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from ..errors import RunError
from .base import decode, truncate

POLL_SECONDS = 0.25  # how often a running process checks whether its execution was cancelled


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


def run_process(argv: list[str], *, stdin: bytes, env: dict, timeout: float, is_cancelled, cwd: str | None = None,
                preexec_fn=None, on_stop=None) -> Finished:
    """Run `argv` to its end, or kill its process group at the deadline (RunError "timeout") or when the
    execution is cancelled (RunError "cancelled"). `on_stop` also runs then (e.g. `docker kill`)."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: S603 - argv from an operator-defined function, no shell
                                env=env, cwd=cwd, start_new_session=True, close_fds=True, preexec_fn=preexec_fn)  # noqa: PLW1509 - setrlimit must run in the child
    except OSError as exc:
        raise RunError(f"Cannot start {argv[0]!r}: {exc.strerror or exc}", code="misconfigured") from None
    deadline = time.monotonic() + timeout
    feed: bytes | None = stdin
    while True:
        try:
            out, err = proc.communicate(feed, timeout=min(POLL_SECONDS, max(0.01, deadline - time.monotonic())))
            break
        except subprocess.TimeoutExpired:
            feed = None
            reason = "timeout" if time.monotonic() >= deadline else "cancelled" if is_cancelled() else None
            if reason is None:
                continue
            _stop(proc, on_stop)
            out, err = proc.communicate()
            message = (f"Killed after {timeout:g}s (the function's timeout)." if reason == "timeout"
                       else "Cancelled while running.")
            raise RunError(message, code=reason, stdout=truncate(decode(out)), stderr=truncate(decode(err))) from None
    return Finished(proc.returncode, truncate(decode(out)), truncate(decode(err)))


def _stop(proc: subprocess.Popen, on_stop) -> None:
    if on_stop is not None:
        on_stop()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: children the command started die too
