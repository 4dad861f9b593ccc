"""The circuit breaker's rules and numbers: its configuration, the health of one deployment as routing reads it
(`HealthStats`), and the per-deployment record both stores keep (rolling window buckets, consecutive failures,
EWMA latency/TTFT, rate-limit state, probes). The state machine itself is described in health.py."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings

KEY_TTL_SECONDS = 86400  # a deployment nobody used for a day disappears
WINDOW_BUCKETS = 6  # the rolling window is this many time buckets of window_seconds / WINDOW_BUCKETS each
MAX_RETRY_AFTER_SECONDS = 3600.0  # a bogus Retry-After must not lock a deployment out for days
DEFAULT_RETRY_AFTER_SECONDS = 1.0

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
CIRCUIT_NAMES = ("closed", "open", "half_open")


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5  # consecutive failures that open the circuit
    error_rate_threshold: float = 0.5  # or: error rate over the window at/above this …
    min_requests: int = 10  # … once the window holds at least this many outcomes
    window_seconds: int = 60  # rolling window for the error rate
    cooldown_seconds: float = 30.0  # open → half-open after this
    half_open_probes: int = 1  # concurrent trial requests allowed while half-open
    ewma_alpha: float = 0.2  # weight of the newest latency/TTFT sample
    # A probe that never reports back (its process died) stops blocking the half-open circuit after this.
    probe_timeout_seconds: float = 120.0

    def __post_init__(self):
        problems = []
        if self.failure_threshold < 1:
            problems.append("failure_threshold must be at least 1")
        if self.error_rate_threshold <= 0:
            problems.append("error_rate_threshold must be above 0")
        if self.min_requests < 1:
            problems.append("min_requests must be at least 1")
        if self.window_seconds <= 0:
            problems.append("window_seconds must be above 0")
        if self.cooldown_seconds < 0:
            problems.append("cooldown_seconds must not be negative")
        if self.half_open_probes < 1:
            problems.append("half_open_probes must be at least 1")
        if not 0 < self.ewma_alpha <= 1:
            problems.append("ewma_alpha must be in (0, 1]")
        if self.probe_timeout_seconds <= 0:
            problems.append("probe_timeout_seconds must be above 0")
        if problems:
            raise ValueError("invalid circuit breaker configuration: " + "; ".join(problems))

    @property
    def bucket_seconds(self) -> float:
        return self.window_seconds / WINDOW_BUCKETS

    @classmethod
    def from_settings(cls) -> BreakerConfig:
        default = cls()
        return cls(
            failure_threshold=int(getattr(settings, "CIRCUIT_FAILURE_THRESHOLD", default.failure_threshold)),
            error_rate_threshold=float(getattr(settings, "CIRCUIT_ERROR_RATE_THRESHOLD",
                                               default.error_rate_threshold)),
            min_requests=int(getattr(settings, "CIRCUIT_MIN_REQUESTS", default.min_requests)),
            window_seconds=getattr(settings, "CIRCUIT_WINDOW_SECONDS", default.window_seconds),
            cooldown_seconds=float(getattr(settings, "CIRCUIT_COOLDOWN_SECONDS", default.cooldown_seconds)),
            half_open_probes=int(getattr(settings, "CIRCUIT_HALF_OPEN_PROBES", default.half_open_probes)),
            ewma_alpha=float(getattr(settings, "CIRCUIT_EWMA_ALPHA", default.ewma_alpha)),
            probe_timeout_seconds=float(getattr(settings, "CIRCUIT_PROBE_TIMEOUT_SECONDS",
                                                default.probe_timeout_seconds)),
        )


@dataclass(frozen=True, slots=True)
class HealthStats:
    requests: int  # outcomes in the rolling window
    errors: int
    error_rate: float  # errors / requests, 0.0 when requests == 0
    consecutive_failures: int
    latency_ms: float | None  # EWMA of whole-request latency; None = never measured
    ttft_ms: float | None  # EWMA of time to first token (streams); None = never measured
    circuit: str  # "closed" | "open" | "half_open"
    rate_limited_until: float | None  # epoch seconds (this host's clock), from 429 Retry-After
    inflight: int

    @property
    def available(self) -> bool:
        """Circuit not open (half-open admits probes) and not rate limited right now."""
        if self.circuit == "open":
            return False
        return self.rate_limited_until is None or time.time() >= self.rate_limited_until


UNKNOWN = HealthStats(0, 0, 0.0, 0, None, None, "closed", None, 0)


def retry_after_seconds(retry_after: float | None) -> float:
    """How long a 429 keeps a deployment rate limited: the upstream's Retry-After, within sane bounds."""
    if not retry_after or retry_after <= 0 or math.isnan(retry_after):
        return DEFAULT_RETRY_AFTER_SECONDS
    return min(float(retry_after), MAX_RETRY_AFTER_SECONDS)


# Scalar fields of a deployment's hash and how to read them (bucket counters r:/e: are handled apart).
_FIELDS = {"st": int, "oa": float, "pi": int, "pa": float, "rl": float, "inf": int, "cf": int, "lat": float,
           "ttft": float}


class DeploymentRecord:
    """One deployment's state: the fields of its Redis hash (read back by RedisHealthStore.stats), or the
    in-process store's record. Both stores derive HealthStats from it the same way."""

    __slots__ = ("buckets", "cf", "inf", "lat", "oa", "pa", "pi", "rl", "st", "touched", "ttft")

    def __init__(self):
        self.st = CLOSED  # stored circuit state; OPEN past its cooldown is effectively HALF_OPEN
        self.oa = 0.0  # opened at
        self.pi = 0  # probes in flight (meaningful in HALF_OPEN)
        self.pa = 0.0  # last probe acquired at
        self.rl: float | None = None  # rate limited until
        self.inf = 0
        self.cf = 0
        self.lat: float | None = None
        self.ttft: float | None = None
        self.buckets: dict[int, list[int]] = {}  # bucket index → [requests, errors]
        self.touched = 0.0

    @classmethod
    def from_redis(cls, raw: dict) -> DeploymentRecord:
        entry = cls()
        for key, value in raw.items():
            name = key.decode() if isinstance(key, bytes) else key
            if name[:2] in ("r:", "e:"):
                counts = entry.buckets.setdefault(int(name[2:]), [0, 0])
                counts[0 if name[0] == "r" else 1] = int(value)
            elif name in _FIELDS:
                setattr(entry, name, _FIELDS[name](value))
        return entry

    def window(self, now: float, config: BreakerConfig) -> tuple[int, int]:
        low = math.floor(now / config.bucket_seconds) - WINDOW_BUCKETS + 1
        requests = errors = 0
        for index, (r, e) in self.buckets.items():
            if index >= low:
                requests += r
                errors += e
        return requests, errors

    def circuit(self, now: float, config: BreakerConfig) -> int:
        if self.st == OPEN and now >= self.oa + config.cooldown_seconds:
            return HALF_OPEN
        return self.st

    def stats(self, now: float, config: BreakerConfig, clock_offset: float = 0.0) -> HealthStats:
        requests, errors = self.window(now, config)
        rate_limited_until = self.rl + clock_offset if self.rl is not None and self.rl > now else None
        return HealthStats(
            requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
            consecutive_failures=self.cf, latency_ms=self.lat, ttft_ms=self.ttft,
            circuit=CIRCUIT_NAMES[self.circuit(now, config)], rate_limited_until=rate_limited_until,
            inflight=self.inf,
        )
