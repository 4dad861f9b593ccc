"""Driving a target with wrk (a Lua script for the POST) and reading its --latency report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from .workload import LoadResult

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"


def available() -> bool:
    return shutil.which("wrk") is not None


def try_install() -> bool:
    """wrk is a Debian package; install it when we may (root), quietly. False if that did not work."""
    if available():
        return True
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        result = subprocess.run(argv, capture_output=True, check=False, timeout=300)  # noqa: S603
        if result.returncode != 0:
            return False
    return available()


def lua_script(body: bytes, headers: dict[str, str]) -> str:
    # A level-2 long bracket cannot be closed by anything a JSON body contains.
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body.decode()}]==]"]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    return "\n".join(lines) + "\n"


def run(url: str, *, body: bytes, headers: dict[str, str], connections: int, threads: int,
        duration: float) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(body, headers))
    try:
        argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
                "--timeout", "10s", "-s", script.name, url]
        result = subprocess.run(argv, capture_output=True, text=True, check=False,  # noqa: S603
                                timeout=duration + 60)
    finally:
        os.unlink(script.name)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    return parse(result.stdout)


def parse(output: str) -> LoadResult:
    """The figures of wrk's plain-text report (wrk 4.x with --latency)."""
    percentiles = {int(p): _ms(v, u) for p, v, u in re.findall(rf"^\s+(\d+)%\s+{_DURATION}\s*$", output, re.M)}
    requests = re.search(r"^\s+(\d+) requests in", output, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not (requests and rps and 50 in percentiles and 99 in percentiles):
        raise RuntimeError(f"could not read wrk's report:\n{output}")
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return LoadResult(
        rps=float(rps.group(1)), p50_ms=percentiles[50], p99_ms=percentiles[99], requests=int(requests.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, socket_errors.groups())) if socket_errors else 0,
        tool="wrk",
    )


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]
