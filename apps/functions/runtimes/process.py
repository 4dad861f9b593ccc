"""Running a child process for a function: input on stdin, a deadline, cancellation, output from stdout.

stdin, stdout and stderr are files in a private temporary directory, not pipes: a child that prints gigabytes
costs disk up to its file-size limit (a `command`'s RLIMIT_FSIZE applies to them too), never the worker's
memory, and a child that does not read its input cannot block the worker writing it. Only the head and tail
of each (FUNCTIONS_LOG_LIMIT_BYTES) are read back."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ..errors import RunError
from .base import decode

POLL_SECONDS = 0.25  # how often a running process checks whether its execution was cancelled
MAX_OUTPUT_LINE_BYTES = 4 * 1024 * 1024  # the output (the last stdout line) may be this long


@dataclass
class Finished:
    returncode: int
    stdout: str  # head and tail, for the logs
    stderr: str
    last_line: str  # the last non-empty stdout line, read in full (up to MAX_OUTPUT_LINE_BYTES)


def read_capped(path: Path) -> str:
    """The file's text, or its head and tail when it is longer than FUNCTIONS_LOG_LIMIT_BYTES."""
    limit = settings.FUNCTIONS_LOG_LIMIT_BYTES
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size <= limit:
            return decode(handle.read())
        half = limit // 2 - 64  # room for the marker: the runner's own cut (base.truncate) then leaves it be
        head = handle.read(half)
        handle.seek(size - half)
        tail = handle.read(half)
    return f"{decode(head)}\n… [{size - 2 * half} bytes cut] …\n{decode(tail)}"


def last_line(path: Path) -> str:
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - MAX_OUTPUT_LINE_BYTES))
        lines = [line for line in handle.read().splitlines() if line.strip()]
    return decode(lines[-1]) if lines else ""


def run_process(argv: list[str], *, stdin: bytes, env: dict, timeout: float, is_cancelled, cwd: str | None = None,
                preexec_fn=None, on_stop=None) -> Finished:
    """Run `argv` to its end, or kill its process group at the deadline (RunError "timeout") or when the
    execution is cancelled (RunError "cancelled"). `on_stop` also runs then (e.g. `docker kill`)."""
    with tempfile.TemporaryDirectory(prefix="cbfn-io-") as io_dir:
        paths = {name: Path(io_dir) / name for name in ("stdin", "stdout", "stderr")}
        paths["stdin"].write_bytes(stdin)
        with paths["stdin"].open("rb") as fin, paths["stdout"].open("wb") as fout, \
                paths["stderr"].open("wb") as ferr:
            try:
                proc = subprocess.Popen(argv, stdin=fin, stdout=fout, stderr=ferr, env=env, cwd=cwd,  # noqa: S603 - argv from an operator-defined function, no shell
                                        start_new_session=True, close_fds=True, preexec_fn=preexec_fn)  # noqa: PLW1509 - setrlimit must run in the child
            except OSError as exc:
                raise RunError(f"Cannot start {argv[0]!r}: {exc.strerror or exc}", code="misconfigured") from None
            reason = _wait(proc, timeout, is_cancelled)
            if reason is not None:
                _stop(proc, on_stop)
                proc.wait()
        out, err, line = read_capped(paths["stdout"]), read_capped(paths["stderr"]), last_line(paths["stdout"])
    if reason is not None:
        message = (f"Killed after {timeout:g}s (the function's timeout)." if reason == "timeout"
                   else "Cancelled while running.")
        raise RunError(message, code=reason, stdout=out, stderr=err)
    return Finished(proc.returncode, out, err, line)


def _wait(proc: subprocess.Popen, timeout: float, is_cancelled) -> str | None:
    """None once the process ended by itself, else why it must be stopped."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        try:
            proc.wait(timeout=min(POLL_SECONDS, left))
            return None
        except subprocess.TimeoutExpired:
            if is_cancelled():
                return "cancelled"


def _stop(proc: subprocess.Popen, on_stop) -> None:
    if on_stop is not None:
        on_stop()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: children the command started die too
