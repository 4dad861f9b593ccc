"""Where a gateway worker spends its time under load: py-spy samples, summarised as text.

py-spy attaches to the running worker from outside (no code change, no restart) and writes collapsed
stacks ("raw" format: `frame;frame;… count`), which speedscope.app or flamegraph.pl can draw and which
this module ranks: self time per function, inclusive time per project function, self time per package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    beside_python = Path(sys.executable).with_name("py-spy")
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


def start_recording(pid: int, seconds: int, out_path: Path, *, rate: int = 200) -> subprocess.Popen:
    """Start sampling `pid` for `seconds` in the background; the caller drives load meanwhile."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed (pip install -r requirements/dev.txt)")
    # --gil: sample only the thread holding the GIL, i.e. CPU work. Without it, idle threads (the
    # sync_to_async pool, uvicorn's supervisor pipe) show up as busy in containers where py-spy cannot tell.
    argv = [binary, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate), "--gil",
            "--format", "raw", "--output", str(out_path)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603


@dataclass
class Profile:
    samples: int = 0
    self_time: Counter = field(default_factory=Counter)  # function -> samples where it was the leaf
    inclusive: Counter = field(default_factory=Counter)  # function -> samples it appeared in
    by_package: Counter = field(default_factory=Counter)  # package of the leaf -> samples

    def top(self, counter: Counter, n: int, *, only=None) -> list[tuple[str, float]]:
        rows = [(name, count) for name, count in counter.most_common() if only is None or only(name)]
        return [(name, 100 * count / self.samples) for name, count in rows[:n]]


def summarise(raw_path: Path) -> Profile:
    profile = Profile()
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_function(frame) for frame in stack.split(";")]
        profile.samples += samples
        profile.self_time[frames[-1]] += samples
        for name in set(frames):
            profile.inclusive[name] += samples
        profile.by_package[_package(stack.split(";")[-1])] += samples
    return profile


def _function(frame: str) -> str:
    """`func (path/file.py:123)` -> `func (path/file.py)`: lines of one function count together."""
    match = _FRAME.match(frame.strip())
    return f"{match['func']} ({match['file']})" if match else frame.strip()


def _package(frame: str) -> str:
    """py-spy names files by module path (`aiohttp/client.py`); our apps count per app (`apps/gateway`)."""
    match = _FRAME.match(frame.strip())
    if not match or "/" not in match["file"]:
        return "other"
    parts = match["file"].split("/")
    return "/".join(parts[:2]) if parts[0] in ("apps", "cbplatform") and len(parts) > 2 else parts[0]


def format_profile(title: str, profile: Profile, n: int = 15) -> str:
    if not profile.samples:
        return f"{title}: no samples (is the worker busy? does py-spy have ptrace rights?)"
    out = [f"{title}: {profile.samples} samples of the GIL-holding thread (time in uvloop/httptools C code "
           "shows under the Python frame that called it, e.g. Runner.run for the event loop itself)"]
    out.append("  self time by package:")
    out += [f"    {pct:5.1f} %  {name}" for name, pct in profile.top(profile.by_package, 12)]
    out.append("  self time by function:")
    out += [f"    {pct:5.1f} %  {name}" for name, pct in profile.top(profile.self_time, n)]
    out.append("  inclusive time, project code (apps/):")
    out += [f"    {pct:5.1f} %  {name}" for name, pct in profile.top(profile.inclusive, n, only=_is_project)]
    return "\n".join(out)


def _is_project(name: str) -> bool:
    return "(apps/" in name or "/apps/" in name
