"""What the load generators send, and what they report."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import orjson

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Case:
    """One load shape, run against every target."""

    name: str
    stream: bool
    connections: int
    threads: int


CASES = (
    Case("json c=1", stream=False, connections=1, threads=1),
    Case("json c=50", stream=False, connections=50, threads=2),
    Case("stream c=50", stream=True, connections=50, threads=2),
)
# The routed target (`auto` over three deployments, one failing half the time) runs only these.
ROUTED_CASES = ("json c=1", "json c=50")


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    tool: str
    cpu_us_per_request: float = float("nan")  # the target's own server processes, user + system

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def combine(rounds: list[LoadResult]) -> LoadResult:
    """One figure per target and case from its rounds: mean req/s, median percentiles, summed errors."""
    requests = sum(r.requests for r in rounds)
    cpu = [r.cpu_us_per_request * r.requests for r in rounds if r.requests]
    return LoadResult(
        rps=statistics.fmean(r.rps for r in rounds),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=statistics.median(r.p99_ms for r in rounds),
        requests=requests,
        non_2xx=sum(r.non_2xx for r in rounds),
        socket_errors=sum(r.socket_errors for r in rounds),
        tool=rounds[0].tool,
        cpu_us_per_request=sum(cpu) / requests if requests else float("nan"),
    )


@dataclass(frozen=True)
class Traffic:
    """The two requests every target receives, and their headers."""

    json_body: bytes
    stream_body: bytes
    headers: dict[str, str]

    @classmethod
    def for_key(cls, api_key: str, model: str) -> Traffic:
        return cls(request_body(model, stream=False), request_body(model, stream=True), request_headers(api_key))

    def body(self, *, stream: bool) -> bytes:
        return self.stream_body if stream else self.json_body


def request_body(model: str, *, stream: bool) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}
    if stream:
        # include_usage so every target sends the same events (the gateway drops usage unless asked).
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return orjson.dumps(body)


def request_headers(api_key: str) -> dict[str, str]:
    # Every target gets the same headers; only the gateway checks the key.
    return {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
