"""What a rate limit check decides, shared by both limiters: the buckets (`Limit`), the checks a bucket becomes
(GCRA for requests and tokens, leased slots for concurrency), and the `Decision` with OpenAI's x-ratelimit-*
headers and 429 message, computed from the state a limiter read. No I/O: see rate_limiter_redis.py and
rate_limiter_memory.py for where the state lives, limits.py for the semantics."""

from __future__ import annotations

import math
from dataclasses import dataclass

US = 1_000_000  # clocks and intervals are in microseconds
MINUTE_US = 60 * US
CONCURRENCY_RETRY_SECONDS = 1.0  # Retry-After for a concurrency refusal (slots free when requests end)
SLACK_US = 1.0  # float tolerance in the GCRA comparison (interval sums are not exact)
REQUESTS, TOKENS, CONCURRENCY = "requests", "tokens", "concurrency"


@dataclass(frozen=True, slots=True)
class Limit:
    """One bucket. A dimension set to None (or 0) is unlimited."""

    key: str  # "key:42", "tenant:7", "global"
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    burst: int = 0  # extra requests a fresh bucket admits at once, above requests_per_minute
    concurrent: int | None = None  # max requests in flight


def format_duration(seconds: float) -> str:
    """OpenAI's (Go's) duration strings, to the millisecond: "20ms", "1s", "1.5s", "6m0s", "1h0m0s"."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    text = f"{secs}.{millis:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


_SCOPES = {"key": "this API key", "tenant": "this organization", "global": "this server"}


def _scope(bucket: str) -> str:
    return _SCOPES.get(bucket.split(":", 1)[0], bucket)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit_requests: int | None = None  # the tightest requests bucket: its per-minute limit (never the burst) …
    remaining_requests: int | None = None  # … what is left of it right now …
    reset_requests_s: float | None = None  # … and seconds until it is full again
    limit_tokens: int | None = None  # the same for the tightest tokens bucket
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None  # refused: seconds until a retry can succeed (None: it never will)
    reason: str | None = None  # refused: "requests" | "tokens" | "concurrency"
    bucket: str | None = None  # refused: the key of the bucket that refused ("key:42", "tenant:7", "global")
    message: str | None = None  # refused: an OpenAI-style sentence for the 429 body
    lease: str | None = None  # admitted and something was taken: pass to settle()/release()

    def headers(self) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers for the limits that exist, plus retry-after when refused."""
        out = {}
        if self.limit_requests is not None:
            out["x-ratelimit-limit-requests"] = str(self.limit_requests)
            if self.remaining_requests is not None:
                out["x-ratelimit-remaining-requests"] = str(self.remaining_requests)
                out["x-ratelimit-reset-requests"] = format_duration(self.reset_requests_s or 0.0)
        if self.limit_tokens is not None:
            out["x-ratelimit-limit-tokens"] = str(self.limit_tokens)
            if self.remaining_tokens is not None:
                out["x-ratelimit-remaining-tokens"] = str(self.remaining_tokens)
                out["x-ratelimit-reset-tokens"] = format_duration(self.reset_tokens_s or 0.0)
        if not self.allowed and self.retry_after_s is not None:
            out["retry-after"] = str(max(1, math.ceil(self.retry_after_s - 1e-9)))
        return out


ALLOW = Decision(allowed=True)


@dataclass(frozen=True, slots=True)
class Check:
    """One dimension of one bucket, as the scripts see it."""

    kind: str  # REQUESTS | TOKENS | CONCURRENCY
    bucket: str
    key_suffix: str  # "<bucket>:r" | ":t" | ":c"
    limit: int  # rpm | tpm | concurrent
    capacity: int  # units the bucket holds (rpm + burst | tpm | concurrent)
    interval: float  # µs per unit (GCRA); 0 for concurrency
    window: float  # capacity * interval: how far ahead of now the TAT may run


def checks_for(limit: Limit) -> list[Check]:
    out = []
    rpm, tpm, conc = limit.requests_per_minute, limit.tokens_per_minute, limit.concurrent
    if rpm and rpm > 0:
        interval = MINUTE_US / rpm
        capacity = rpm + max(0, limit.burst)
        out.append(Check(REQUESTS, limit.key, limit.key + ":r", rpm, capacity, interval, capacity * interval))
    if tpm and tpm > 0:
        out.append(Check(TOKENS, limit.key, limit.key + ":t", tpm, tpm, MINUTE_US / tpm, float(MINUTE_US)))
    if conc and conc > 0:
        out.append(Check(CONCURRENCY, limit.key, limit.key + ":c", conc, conc, 0.0, 0.0))
    return out


def refusal_message(check: Check, retry_after: float | None, tokens: int) -> str:
    scope = _scope(check.bucket)
    if check.kind == CONCURRENCY:
        return (f"Too many concurrent requests for {scope}: limit {check.limit} in flight. "
                f"Please try again once one of them has finished.")
    unit = "requests per min (RPM)" if check.kind == REQUESTS else "tokens per min (TPM)"
    requested = 1 if check.kind == REQUESTS else tokens
    if retry_after is None:
        return (f"Request too large for {scope} on {unit}: Limit {check.limit}, Requested {requested}. "
                f"Reduce the prompt or max_tokens.")
    return (f"Rate limit reached for {scope} on {unit}: Limit {check.limit}, Requested {requested}. "
            f"Please try again in {format_duration(retry_after)}.")


def decide(plan: tuple[Check, ...], tokens: int, *, ok: bool, now: float, flags, values, lease: str | None
           ) -> Decision:
    """The decision from a script's answer: per check, fits (flag) and state before taking (TAT or count).
    Refused: the refusing bucket that needs the longest wait is named, and that wait is the Retry-After."""
    tightest: dict[str, tuple[int, float, Check]] = {}
    refusal: tuple[float, Check] | None = None
    for check, fits, value in zip(plan, flags, values, strict=True):
        if check.kind == CONCURRENCY:
            if not fits and (refusal is None or refusal[0] < CONCURRENCY_RETRY_SECONDS):
                refusal = (CONCURRENCY_RETRY_SECONDS, check)
            continue
        cost = 1 if check.kind == REQUESTS else tokens
        tat = max(float(value), now)
        after = tat + cost * check.interval if ok else tat
        used = after - now
        # The headers speak of the per-minute limit (a minute's worth of TAT); a burst is headroom above it that
        # lets a short spike through but is not advertised, so `remaining` counts down from the limit.
        remaining = min(check.limit, max(0, math.floor((MINUTE_US - used) / check.interval + 1e-6)))
        reset = max(0.0, used / US)
        if not fits:
            retry = max(0.0, (tat + cost * check.interval - check.window - now) / US)
            if refusal is None or retry > refusal[0] or (retry == refusal[0] and refusal[1].kind == CONCURRENCY):
                refusal = (retry, check)
        best = tightest.get(check.kind)
        if best is None or (remaining, -reset) < (best[0], -best[1]):
            tightest[check.kind] = (remaining, reset, check)
    requests, token_state = tightest.get(REQUESTS), tightest.get(TOKENS)
    fields = {}
    if requests is not None:
        fields.update(limit_requests=requests[2].limit, remaining_requests=requests[0],
                      reset_requests_s=requests[1])
    if token_state is not None:
        fields.update(limit_tokens=token_state[2].limit, remaining_tokens=token_state[0],
                      reset_tokens_s=token_state[1])
    if ok:
        return Decision(allowed=True, lease=lease, **fields)
    retry, check = refusal
    return Decision(allowed=False, retry_after_s=retry, reason=check.kind, bucket=check.bucket,
                    message=refusal_message(check, retry, tokens), **fields)


def too_large(plan: tuple[Check, ...], tokens: int) -> Decision | None:
    """A request whose estimate exceeds a tokens-per-minute limit can never be admitted: say so without a call."""
    for check in plan:
        if check.kind == TOKENS and tokens > check.limit:
            fields = {"limit_tokens": check.limit}
            requests = next((c for c in plan if c.kind == REQUESTS), None)
            if requests is not None:
                fields["limit_requests"] = requests.limit
            return Decision(allowed=False, reason=TOKENS, bucket=check.bucket,
                            message=refusal_message(check, None, tokens), **fields)
    return None


def unchecked(plan: tuple[Check, ...]) -> Decision:
    """Fail-open answer: allowed, the limits known, their state not."""
    fields = {}
    for check in plan:
        if check.kind == REQUESTS and "limit_requests" not in fields:
            fields["limit_requests"] = check.limit
        elif check.kind == TOKENS and "limit_tokens" not in fields:
            fields["limit_tokens"] = check.limit
    return Decision(allowed=True, **fields)
