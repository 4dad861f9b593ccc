"""The routed case's own observations: what the gateway's /metrics says, and how the failing circuit moved.

- `scrape` reads the counters that matter here from `GET /metrics` (every worker's values, merged): upstream
  attempts by provider and outcome, answered requests by provider and status, and `cb_circuit_state`.
  The bench scrapes before and after each measured routed run (never during one), so the differences are
  that run's alone: attempts per client request, and whether the gateway's own count of answered requests
  agrees with the load generator's.
- `CircuitWatch` polls the failing deployment's health record in Redis (the bench's database 12) ten times a
  second, from a thread of the bench, for the timeline the metrics cannot give: when the circuit opened,
  half-open trials, closings, and the share of the routed runs' time it spent open. It reads two fields of
  one hash per poll, which costs the gateway nothing; if the store's key layout changes it sees nothing and
  says so.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

HEALTH_KEY_PREFIX = "cb:health:"  # apps.gateway.health.RedisHealthStore's default prefix
CIRCUIT_NAMES = {0.0: "closed", 1.0: "half_open", 2.0: "open"}  # cb_circuit_state values
POLL_SECONDS = 0.1


@dataclass
class Scrape:
    attempts: Counter = field(default_factory=Counter)  # (provider, outcome) -> count
    requests: Counter = field(default_factory=Counter)  # (provider, status) -> count
    circuits: dict = field(default_factory=dict)  # provider -> state name, for the scraped deployments


def scrape(gateway_root: str, providers: set[str]) -> Scrape:
    """The routed providers' counters and circuit states from the gateway's /metrics."""
    with urllib.request.urlopen(f"{gateway_root}/metrics", timeout=10) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    out = Scrape()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, provider = sample.labels, sample.labels.get("provider")
            if sample.name == "cb_upstream_attempts_total" and provider in providers:
                out.attempts[provider, labels["outcome"]] += sample.value
            elif sample.name == "cb_requests_total" and labels.get("endpoint") == "chat.completions":
                out.requests[provider, labels["status"]] += sample.value
            elif sample.name == "cb_circuit_state" and provider in providers:
                out.circuits[provider] = CIRCUIT_NAMES.get(sample.value, str(sample.value))
    return out


def difference(before: Scrape, after: Scrape) -> dict:
    """One measured run's counts, as JSON-ready dicts."""
    def changed(now: Counter, then: Counter) -> dict[str, int]:
        counts = {"/".join(key): int(value - then.get(key, 0)) for key, value in now.items()}
        return {name: count for name, count in counts.items() if count}

    return {"attempts": changed(after.attempts, before.attempts), "requests": changed(after.requests, before.requests),
            "circuits_after": dict(after.circuits)}


class CircuitWatch:
    """Polls one deployment's stored circuit in a thread; `label` names the routed run in progress (or None)."""

    def __init__(self, redis_url: str, deployment: str):
        self.redis_url = redis_url
        self.key = HEALTH_KEY_PREFIX + deployment
        self.cooldown = float(os.environ.get("CIRCUIT_COOLDOWN_SECONDS", "30"))
        self.label: str | None = None  # set by the bench around each measured routed run
        self.routed_started: float | None = None  # when routed load first began (s since the watch started)
        self.events: list[dict] = []  # stored-state changes: t (s since the watch started), state, opened_at
        self.time_in: dict[str, Counter] = {}  # run label -> effective state -> polls
        self.error: str | None = None
        self.seen = False  # the record existed at least once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="circuit-watch", daemon=True)

    def __enter__(self) -> CircuitWatch:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def load_starting(self) -> None:
        """Routed load (a warm-up) is about to start; the first call marks the start of the timeline."""
        if self.routed_started is None:
            self.routed_started = round(time.monotonic() - self.started, 2)

    def running(self, label: str | None) -> None:
        """A measured routed run starts (its label) or ends (None)."""
        self.label = label

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=5)
        return False

    def _run(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        last = None
        try:
            while not self._stop.wait(POLL_SECONDS):
                pipe = client.pipeline(transaction=False)
                pipe.time()
                pipe.exists(self.key)
                pipe.hmget(self.key, "st", "oa")
                (seconds, micros), exists, (st, oa) = pipe.execute()
                if not exists:  # no outcome recorded yet
                    continue
                self.seen = True
                # A record without `st` has never opened: closed.
                now, st, oa = seconds + micros / 1e6, int(st or 0), float(oa or 0)
                if (st, oa) != last:
                    self.events.append({"t": round(time.monotonic() - self.started, 2), "stored": st,
                                        "opened_at": oa})
                    last = (st, oa)
                if self.label is not None:
                    self.time_in.setdefault(self.label, Counter())[self._effective(st, oa, now)] += 1
        except Exception as exc:  # the watch is a diagnostic: it must never break the benchmark
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def _effective(self, st: int, oa: float, now: float) -> str:
        # Stored states (apps.gateway.health): 0 closed, 1 open (half-open once the cool-down is over), 2 half-open.
        if st == 1:
            return "open" if now < oa + self.cooldown else "half_open"
        return "half_open" if st == 2 else "closed"

    def summary(self) -> dict:
        """Openings, trials and closings seen (lower bounds: a change and its reversal within one poll interval
        are missed), and the share of each routed run's polls per effective state."""
        began = self.routed_started or 0.0
        opened, seen_at = [], set()
        for event in self.events:  # every opening stamps a new opened_at
            if event["stored"] == 1 and event["opened_at"] and event["opened_at"] not in seen_at:
                seen_at.add(event["opened_at"])
                opened.append(round(event["t"] - began, 1))
        trials = closings = 0
        for previous, event in zip(self.events, self.events[1:], strict=False):
            trials += event["stored"] == 2 and previous["stored"] != 2
            closings += event["stored"] == 0 and previous["stored"] != 0
        polls = Counter()
        for counts in self.time_in.values():
            polls.update(counts)
        total = sum(polls.values())
        return {
            "watched": self.seen, "error": self.error, "openings_seen": len(opened),
            "opened_s_after_routed_load_began": opened, "half_open_trials_seen": trials, "closings_seen": closings,
            "routed_started_s": self.routed_started, "cooldown_s": self.cooldown,
            "share_of_routed_time": {state: round(n / total, 3) for state, n in polls.items()} if total else {},
            "per_run": {label: dict(counts) for label, counts in self.time_in.items()},
            "events": self.events[:200],
        }
