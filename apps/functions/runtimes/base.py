"""What every runtime is given and gives back, and the output rules runtimes share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from django.conf import settings

from ..errors import RunError


@dataclass(frozen=True)
class RunContext:
    execution_id: str
    function_id: str
    trigger: str
    timeout: float
    attempt: int = 1
    is_cancelled: Callable[[], bool] = field(default=lambda: False)
    facts: dict = field(default_factory=dict)


@dataclass
class Result:
    output: dict
    stdout: str = ""
    stderr: str = ""


def truncate(text: str) -> str:
    """Logs are kept up to FUNCTIONS_LOG_LIMIT_BYTES characters: the head and the tail, which say the most."""
    limit = settings.FUNCTIONS_LOG_LIMIT_BYTES
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… [{len(text) - 2 * half} characters cut] …\n{text[-half:]}"


def decode(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", errors="replace")


def last_line_json(line: str, stdout: str = "", stderr: str = "") -> dict:
    """The output of a process: its last non-empty stdout line, a JSON object."""
    if not line.strip():
        raise RunError("The process printed nothing; its last stdout line must be a JSON object.", code="bad_output",
                       stdout=stdout, stderr=stderr)
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise RunError(f"The last stdout line is not JSON: {line[:200]!r}", code="bad_output",
                       stdout=stdout, stderr=stderr) from None
    if not isinstance(value, dict):
        raise RunError(f"The last stdout line is JSON {type(value).__name__}, not an object.", code="bad_output",
                       stdout=stdout, stderr=stderr)
    return value


def string_map_problems(value, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return [f"{name} must map names to strings"]
    return []
