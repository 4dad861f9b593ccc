"""Prometheus metrics of the gateway, correct across uvicorn worker processes.

With several workers `manage.py serve` exports PROMETHEUS_MULTIPROC_DIR (a fresh, empty directory)
before any worker starts: prometheus_client then keeps every value in per-process mmap files there and a
scrape of `GET /metrics` on any worker merges all of them. Without the variable (one worker, runserver,
tests) the values live in the default in-process registry.

The gateway records through three cheap calls: `record_request`, `record_attempt` and `inflight`. They only
append the record to a per-process list; the tally reaches prometheus_client in bulk (`flush`, which labels and
sums the records) before every scrape of this process, one second after the first unflushed record, and at
exit. Each prometheus_client
update costs a lock, a getpid and, in multiprocess mode, an mmap write: per request that was ~17 of them, now
one per label set per second. A scrape of another worker may therefore lag this one's last second. Circuit
state is not recorded at all: it lives in Redis and is read at scrape time from the callable registered
with `set_circuit_source`, so every process reports the same thing.

Label values must come from the catalogue / provider slugs, never from user input; as a safety net every
label keeps at most MAX_LABEL_VALUES distinct values per process (later ones become "other").
"""

from __future__ import annotations

import asyncio
import atexit
import bisect
import collections
import glob
import logging
import math
import os
import threading
from collections.abc import Awaitable, Callable, Iterable

import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

logger = logging.getLogger("apps.gateway.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "unknown"
OTHER = "other"
MAX_LABEL_VALUES = 1000
MAX_LABEL_LENGTH = 200
CIRCUIT_SOURCE_TIMEOUT = 3.0

# `*_created` series would only exist in single-process mode and double the series count.
prometheus_client.disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
                   60.0, 120.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

ATTEMPT_OUTCOMES = frozenset({"ok", "retryable_error", "error", "circuit_open", "rate_limited"})
CIRCUIT_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}

REQUESTS = Counter("cb_requests_total", "Gateway requests answered, by endpoint, model, provider and HTTP status.",
                   ["endpoint", "model", "provider", "status"])
DURATION = Histogram("cb_request_duration_seconds", "Gateway request duration (until the last byte), seconds.",
                     ["endpoint", "provider"], buckets=LATENCY_BUCKETS)
TTFT = Histogram("cb_time_to_first_token_seconds", "Time to the first streamed token, seconds.", ["provider"],
                 buckets=TTFT_BUCKETS)
TOKENS = Counter("cb_tokens_total", "Tokens reported by upstreams (kind: prompt, completion, cached, reasoning).",
                 ["provider", "model", "kind"])
COST = Counter("cb_cost_usd_total", "Cost of gateway requests in US dollars.", ["provider", "model"])
ERRORS = Counter("cb_errors_total", "Gateway errors by endpoint and OpenAI error type/code.", ["endpoint", "type"])
ATTEMPTS = Counter("cb_upstream_attempts_total", "Upstream attempts by provider, model and outcome "
                   "(ok, retryable_error, error, circuit_open, rate_limited).", ["provider", "model", "outcome"])
INFLIGHT = Gauge("cb_inflight_requests", "Gateway requests in flight.", multiprocess_mode="livesum")

class LabelValues:
    """Bounded label values, one budget per label kind: missing → "unknown"; longer than max_length, or beyond
    max_values distinct values, → "other" (values already admitted keep their name)."""

    def __init__(self, *, max_values: int = MAX_LABEL_VALUES, max_length: int = MAX_LABEL_LENGTH):
        self.max_values, self.max_length = max_values, max_length
        self.seen: dict[str, set[str]] = {}

    def bounded(self, value, kind: str) -> str:
        if value is None or value == "":
            return UNKNOWN
        value = value if isinstance(value, str) else str(value)
        seen = self.seen.setdefault(kind, set())
        if value in seen:
            return value
        if len(value) > self.max_length or len(seen) >= self.max_values:
            return OTHER
        seen.add(value)
        return value


_label = LabelValues().bounded  # every metric of this process shares one budget per label kind


def _amount(value) -> float:
    """A non-negative number from an upstream-provided field, else 0 (usage dicts are not trusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # Decimal, numeric strings
        except (TypeError, ValueError):
            return 0.0
    value = float(value)
    return value if value > 0 and math.isfinite(value) else 0.0


def _usage_tokens(usage: dict) -> Iterable[tuple[str, float]]:
    yield "prompt", _amount(usage.get("prompt_tokens"))
    yield "completion", _amount(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        yield "cached", _amount(details.get("cached_tokens"))
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict):
        yield "reasoning", _amount(details.get("reasoning_tokens"))


_children: dict[tuple, object] = {}


def _child(metric, *labels):
    """`metric.labels(*labels)`, memoised: labels() validates and locks on every call (~1 µs each, several per
    request); label values are already bounded by _label, so the cache is too."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


# ---- the tally -----------------------------------------------------------------------------------------
# Records wait here as they were given, one tuple each: labelling, bounding and summing happen at flush time,
# once per label set, not per request.
_requests: list[tuple] = []  # (endpoint, model, provider, status, duration_s, ttft_s, usage, cost, error_type)
_attempts: list[tuple] = []  # (provider, model, outcome)
_inflight = 0  # this process's requests in flight: the gauge is set to it when the tally is flushed
_lock = threading.Lock()  # platform code records from worker threads too
_flush_loop: asyncio.AbstractEventLoop | None = None  # the loop holding the pending flush timer
FLUSH_SECONDS = 1.0


def _schedule() -> None:
    global _flush_loop
    pending = _flush_loop
    if pending is not None and not pending.is_closed():  # a flush is due within FLUSH_SECONDS
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # synchronous callers (management commands, threads): nothing to flush later with
        flush()
        return
    _flush_loop = loop
    loop.call_later(FLUSH_SECONDS, flush)


def flush() -> None:
    """Apply the tally to prometheus_client: one update per counter label set, and per histogram label set one
    update of its sum and of each bucket hit (what `observe` would have done once per value)."""
    global _requests, _attempts, _flush_loop
    with _lock:
        requests, attempts, _requests, _attempts = _requests, _attempts, [], []
        _flush_loop = None
    INFLIGHT.set(_inflight)
    added: dict[object, float] = {}
    observed: dict[object, list[float]] = {}
    for labels, count in collections.Counter(attempts).items():
        provider, model, outcome = labels
        child = _child(ATTEMPTS, _label(provider, "provider"), _label(model, "model"),
                       outcome if outcome in ATTEMPT_OUTCOMES else UNKNOWN)
        added[child] = added.get(child, 0.0) + count
    for record in requests:
        _add_request(added, observed, record)
    for child, amount in added.items():
        child.inc(amount)
    for child, values in observed.items():
        bounds = child._upper_bounds  # prometheus_client's Histogram internals (pinned; tests cover them)
        hits = [0] * len(bounds)
        for value in values:
            hits[bisect.bisect_left(bounds, value)] += 1
        child._sum.inc(math.fsum(values))
        for index, count in enumerate(hits):
            if count:
                child._buckets[index].inc(count)


atexit.register(flush)


def _add_request(added: dict, observed: dict, record: tuple) -> None:
    endpoint, model, provider, status, duration_s, ttft_s, usage, cost, error_type = record
    endpoint = _label(endpoint, "endpoint")
    model = _label(model, "model")
    provider = _label(provider, "provider")
    status = int(status)
    updates = [(_child(REQUESTS, endpoint, model, provider, str(status)), 1.0)]
    if usage and isinstance(usage, dict):
        for kind, count in _usage_tokens(usage):
            if count:
                updates.append((_child(TOKENS, provider, model, kind), count))
    if cost is not None:
        dollars = _amount(cost)
        if dollars:
            updates.append((_child(COST, provider, model), dollars))
    if error_type is not None or status >= 400:
        updates.append((_child(ERRORS, endpoint, _label(error_type, "error_type")), 1.0))
    for child, amount in updates:
        added[child] = added.get(child, 0.0) + amount
    observations = [(_child(DURATION, endpoint, provider), _amount(duration_s))]
    if ttft_s is not None:
        observations.append((_child(TTFT, provider), _amount(ttft_s)))
    for child, value in observations:
        values = observed.get(child)
        if values is None:
            observed[child] = [value]
        else:
            values.append(value)


def record_request(*, endpoint: str, model: str, provider: str, status: int, duration_s: float,
                   ttft_s: float | None = None, usage: dict | None = None, cost: float | None = None,
                   error_type: str | None = None) -> None:
    """Record one answered gateway request (call once, when the response is complete; `usage` is read at the
    next flush, so it must not change after this call)."""
    record = (endpoint, model, provider, status, duration_s, ttft_s, usage, cost, error_type)
    with _lock:
        _requests.append(record)
    _schedule()


def record_attempt(*, provider: str, model: str, outcome: str) -> None:
    """Record one upstream attempt. An outcome outside ATTEMPT_OUTCOMES is counted as "unknown"."""
    with _lock:
        _attempts.append((provider, model, outcome))
    _schedule()


def inflight(delta: int) -> None:
    """+1 when a request starts, -1 when it ends (summed over live processes)."""
    global _inflight
    _inflight += delta
    _schedule()


# ---- circuit state (read at scrape time) ---------------------------------------------------------------
CircuitSource = Callable[[], Awaitable[list[tuple[str, str, str, str]]]]
_circuit_source: CircuitSource | None = None


def set_circuit_source(source: CircuitSource | None) -> None:
    """Register `async fn() -> [(deployment, provider, model, state)]`; None unregisters."""
    global _circuit_source
    _circuit_source = source


async def _circuit_family() -> GaugeMetricFamily | None:
    source = _circuit_source
    if source is None:
        return None
    try:
        rows = await asyncio.wait_for(source(), timeout=CIRCUIT_SOURCE_TIMEOUT)
    except Exception:  # a scrape reports what it can; the other metrics still go out
        logger.warning("circuit state source failed; /metrics omits cb_circuit_state", exc_info=True)
        return None
    family = GaugeMetricFamily("cb_circuit_state",
                               "Circuit breaker state per deployment: 0 closed, 1 half_open, 2 open.",
                               labels=["deployment", "provider", "model"])
    for deployment, provider, model, state in rows:
        value = CIRCUIT_STATES.get(state)
        if value is not None:
            family.add_metric([str(deployment), provider or UNKNOWN, model or UNKNOWN], value)
    return family


class _Static:
    """A collector yielding families computed before the (synchronous) exposition runs."""

    def __init__(self, families):
        self._families = families

    def collect(self):
        return iter(self._families)


# ---- exposition ----------------------------------------------------------------------------------------
def _prune_dead(path: str) -> None:
    """Drop live-gauge files of processes that are gone (a crashed or replaced worker's in-flight count)."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        try:
            pid = int(os.path.basename(name).rsplit("_", 1)[1][:-3])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:
            pass


def render() -> bytes:
    """The exposition text of the recorded metrics (all processes in multiprocess mode)."""
    flush()
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return generate_latest(REGISTRY)
    _prune_dead(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return generate_latest(registry)


async def render_all() -> bytes:
    """Recorded metrics plus the circuit state read now."""
    body = await asyncio.to_thread(render)
    family = await _circuit_family()
    if family is not None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Static([family]))
        body += generate_latest(registry)
    return body


async def metrics_app(scope, receive, send):
    """GET /metrics: a raw ASGI app (no Django)."""
    method = scope["method"]
    if method not in ("GET", "HEAD"):
        payload = (b'{"error": {"message": "Use GET /metrics.", "type": "invalid_request_error", '
                   b'"param": null, "code": "method_not_allowed"}}')
        await send({"type": "http.response.start", "status": 405,
                    "headers": [(b"content-type", b"application/json"), (b"allow", b"GET, HEAD"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
        return
    payload = await render_all()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"cache-control", b"no-store"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})


def inflight_now() -> int:
    """Gateway requests in flight right now, summed over this server's live worker processes."""
    for family in text_string_to_metric_families(render().decode()):
        if family.name == INFLIGHT._name:
            return int(sum(sample.value for sample in family.samples))
    return 0
