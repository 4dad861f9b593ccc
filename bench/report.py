"""Turning the measurements into the table, the derived figures and the targets, as text and JSON."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import asdict

from .ttfb import TtfbResult
from .workload import CASES, LoadResult, combine

TARGETS = ("direct", "baseline", "gateway", "routed")  # routed: the gateway, `auto` over three deployments
TTFB_TARGETS = ("direct", "baseline", "gateway")
THROUGHPUT_GOAL = 0.60  # gateway req/s >= 60 % of the baseline's at c=50
ADDED_LATENCY_GOAL_MS = 0.75  # added p50 at c=1 (json) over the direct upstream (issue 12)
ADDED_TTFB_GOAL_MS = 1.0  # added stream TTFB p50 over the direct upstream
CPU_RATIO_GOAL = 2.0  # gateway CPU per request <= 2x the baseline's at c=50, json and stream (issue 12)
# The routed case against the direct-model case (the gateway target): req/s at c=50 at least 90 % of it, and
# added p50 at c=1 (over the fake upstream) at most 10 % above its added p50.
ROUTED_TOLERANCE = 0.10


def build(rounds: dict[str, dict[str, list[LoadResult]]], ttfb: dict[str, TtfbResult], rss: dict[str, list[float]],
          meta: dict, routed: dict | None = None) -> dict:
    """`rounds`: target -> case -> one LoadResult per round, the targets alternating within each round.
    `routed`: the routed target's /metrics differences and circuit watch (bench.__main__.RoutedObserver)."""
    runs = {t: {case: combine(results) for case, results in by_case.items()} for t, by_case in rounds.items()}
    derived = {
        # Paired: compare targets within each round, then take the median over the rounds.
        "added_p50_ms_c1": {t: _paired(rounds, t, "direct", "json c=1", lambda a, b: a.p50_ms - b.p50_ms)
                            for t in ("baseline", "gateway")},
        "added_ttfb_p50_ms": {t: _minus(ttfb[t].p50_ms, ttfb["direct"].p50_ms) for t in ("baseline", "gateway")},
        "throughput_ratio_c50": {
            kind: _paired(rounds, "gateway", "baseline", case, lambda a, b: _ratio(a.rps, b.rps))
            for kind, case in (("json", "json c=50"), ("stream", "stream c=50"))
        },
        "cpu_ratio_c50": {
            kind: _ratio(runs["gateway"][case].cpu_us_per_request, runs["baseline"][case].cpu_us_per_request)
            for kind, case in (("json", "json c=50"), ("stream", "stream c=50"))
        },
        "gateway_errors": sum(r.errors for r in runs["gateway"].values()) + ttfb["gateway"].errors,
        "other_errors": sum(r.errors for t in ("direct", "baseline") for r in runs[t].values())
        + ttfb["direct"].errors + ttfb["baseline"].errors,
    }
    if "routed" in rounds:
        derived["routed"] = _routed_derived(rounds, runs, routed or {})
    return {
        "meta": meta,
        "runs": {t: {case: _as_dict(r) for case, r in by_case.items()} for t, by_case in runs.items()},
        "rounds": {t: {case: [_as_dict(r) for r in results] for case, results in by_case.items()}
                   for t, by_case in rounds.items()},
        "ttfb": {t: asdict(r) for t, r in ttfb.items()},
        "rss_mib": rss,
        "derived": derived,
        "routed": routed,
        "targets": _targets(derived),
    }


def _routed_derived(rounds: dict, runs: dict, routed: dict) -> dict:
    """Routed against the direct-model case (the gateway target), round by round; attempts from /metrics."""
    def added_share(r: LoadResult, g: LoadResult, d: LoadResult) -> float:
        return _ratio(r.p50_ms - g.p50_ms, g.p50_ms - d.p50_ms)

    shares = [added_share(r, g, d) for r, g, d in zip(rounds["routed"]["json c=1"], rounds["gateway"]["json c=1"],
                                                     rounds["direct"]["json c=1"], strict=True)]
    shares = [v for v in shares if not math.isnan(v)]
    attempts, requests = Counter(), Counter()
    for run in routed.get("runs", []):
        attempts.update(run.get("attempts", {}))
        requests.update(run.get("requests", {}))
    by_outcome = Counter()
    for name, count in attempts.items():
        by_outcome[name.rsplit("/", 1)[1]] += count
    answered = sum(requests.values())  # the gateway's own count of the measured runs' chat requests
    upstream = sum(n for outcome, n in by_outcome.items() if outcome != "circuit_open")
    per_round = [_ratio(r.rps, g.rps) for r, g in zip(rounds["routed"]["json c=50"], rounds["gateway"]["json c=50"],
                                                      strict=True)]
    return {
        "throughput_ratio_c50": _paired(rounds, "routed", "gateway", "json c=50", lambda a, b: _ratio(a.rps, b.rps)),
        "throughput_ratio_c50_rounds": per_round,
        "cpu_ratio": {case: _ratio(runs["routed"][case].cpu_us_per_request, runs["gateway"][case].cpu_us_per_request)
                      for case in ("json c=1", "json c=50")},
        "added_p50_ms_c1": _paired(rounds, "routed", "gateway", "json c=1", lambda a, b: a.p50_ms - b.p50_ms),
        # (routed - direct-model) / (direct-model - fake upstream): how much larger the added latency is.
        "added_p50_share_c1": statistics.median(shares) if shares else math.nan,
        "direct_model_added_p50_ms_c1": _paired(rounds, "gateway", "direct", "json c=1",
                                                lambda a, b: a.p50_ms - b.p50_ms),
        "errors": sum(r.errors for r in runs["routed"].values()),
        "client_requests": sum(r.requests for r in runs["routed"].values()),
        # wrk's figures for the unmeasured warm-ups, where the circuit of the failing deployment is decided
        "warmup_errors": sum(run.get("warmup_client_errors", 0) for run in routed.get("runs", [])),
        "warmup_client_requests": sum(run.get("warmup_client_requests", 0) for run in routed.get("runs", [])),
        "gateway_answered": dict(requests),
        "attempts": dict(attempts),
        "attempts_by_outcome": dict(by_outcome),
        "upstream_attempts_per_request": upstream / answered if answered else math.nan,
        "candidates_per_request": sum(by_outcome.values()) / answered if answered else math.nan,
    }


def _paired(rounds: dict, a: str, b: str, case: str, compare) -> float:
    values = [compare(x, y) for x, y in zip(rounds[a][case], rounds[b][case], strict=True)]
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def _as_dict(result: LoadResult) -> dict:
    return asdict(result) | {"errors": result.errors}


def _targets(derived: dict) -> list[dict]:
    ratio, added = derived["throughput_ratio_c50"], derived["added_p50_ms_c1"]["gateway"]
    ttfb, cpu = derived["added_ttfb_p50_ms"]["gateway"], derived["cpu_ratio_c50"]
    rows = [
        ("throughput c=50 json, gateway/baseline", _pct(ratio["json"]), f">= {THROUGHPUT_GOAL:.0%}",
         ratio["json"] >= THROUGHPUT_GOAL),
        ("throughput c=50 stream, gateway/baseline", _pct(ratio["stream"]), f">= {THROUGHPUT_GOAL:.0%}",
         ratio["stream"] >= THROUGHPUT_GOAL),
        ("added p50 c=1 json, gateway - direct", f"{added:.2f} ms", f"<= {ADDED_LATENCY_GOAL_MS:g} ms",
         added <= ADDED_LATENCY_GOAL_MS),
        ("added stream TTFB p50, gateway - direct", f"{ttfb:.2f} ms", f"<= {ADDED_TTFB_GOAL_MS:g} ms",
         ttfb <= ADDED_TTFB_GOAL_MS),
        *((f"CPU per request c=50 {kind}, gateway/baseline", _times(cpu[kind]), f"<= {CPU_RATIO_GOAL:g}x",
           cpu[kind] <= CPU_RATIO_GOAL) for kind in ("json", "stream")),
        ("gateway errors (non-2xx + socket), all runs", str(derived["gateway_errors"]), "0",
         derived["gateway_errors"] == 0),
    ]
    routed = derived.get("routed")
    if routed:
        ratio, added, share = routed["throughput_ratio_c50"], routed["added_p50_ms_c1"], routed["added_p50_share_c1"]
        rows += [
            ("throughput c=50 json, routed/direct-model", _pct(ratio), f">= {1 - ROUTED_TOLERANCE:.0%}",
             ratio >= 1 - ROUTED_TOLERANCE),
            ("added p50 c=1 json, routed - direct-model", f"{added:+.2f} ms, {_signed_pct(share)}",
             f"<= +{ROUTED_TOLERANCE:.0%}", share <= ROUTED_TOLERANCE),
            ("routed errors (non-2xx + socket), incl. warm-ups", str(routed["errors"] + routed["warmup_errors"]), "0",
             routed["errors"] + routed["warmup_errors"] == 0),
        ]
    return [{"name": name, "figure": figure, "goal": goal, "pass": bool(ok)} for name, figure, goal, ok in rows]


def format_text(report: dict) -> str:
    meta, runs, ttfb, derived = report["meta"], report["runs"], report["ttfb"], report["derived"]
    out = [f"cbplatform gateway benchmark, {meta['started']}, git {meta['git']}, gateway source "
           f"{meta['gateway_source']}",
           f"load generator {meta['tool']}; per case {meta['rounds']} rounds x {meta['duration_s']} s per target "
           f"(+{meta['warmup_s']} s warm-up), targets alternating; {meta['workers']} workers for baseline and "
           f"gateway; {meta['cpus']} CPUs, load average before {meta['loadavg']}",
           "req/s: mean of rounds; p50/p99: median of rounds; ratios and added latency: median of per-round "
           "comparisons", ""]
    out.append(f"{'target':<9} {'case':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7} "
               f"{'cpu us/req':>11}")
    for case in CASES:
        for target in TARGETS:
            if case.name not in runs.get(target, {}):
                continue
            r = runs[target][case.name]
            out.append(f"{target:<9} {case.name:<12} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                       f"{r['requests']:>9} {r['errors']:>7} {_num(r['cpu_us_per_request']):>11}")
    out.append("")
    out.append(f"{'target':<9} {'stream TTFB':<12} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}")
    for target in TTFB_TARGETS:
        t = ttfb[target]
        out.append(f"{target:<9} {'c=1 seq.':<12} {t['p50_ms']:>8.2f} {t['p99_ms']:>8.2f} {t['requests']:>9} "
                   f"{t['errors']:>7}")
    out.append("")
    added, added_ttfb = derived["added_p50_ms_c1"], derived["added_ttfb_p50_ms"]
    ratio = derived["throughput_ratio_c50"]
    out.append(f"added p50 over direct, json c=1:   baseline {added['baseline']:+.2f} ms, "
               f"gateway {added['gateway']:+.2f} ms")
    out.append(f"added stream TTFB p50 over direct: baseline {added_ttfb['baseline']:+.2f} ms, "
               f"gateway {added_ttfb['gateway']:+.2f} ms")
    out.append(f"gateway/baseline req/s at c=50:    json {_pct(ratio['json'])}, stream {_pct(ratio['stream'])}")
    cpu = derived["cpu_ratio_c50"]
    out.append(f"gateway/baseline CPU per request:  json {_times(cpu['json'])}, stream {_times(cpu['stream'])} "
               "(server processes only, c=50)")
    for target, sizes in report["rss_mib"].items():
        figures = ", ".join(f"{mib:.0f} MiB" for mib in sizes) or "n/a"
        out.append(f"RSS per {target} worker after load:  {figures}")
    if derived["other_errors"]:
        out.append(f"WARNING: {derived['other_errors']} errors on direct/baseline: the bench itself is unhealthy")
    if derived.get("routed"):
        out += [""] + _routed_text(report)
    out.append("")
    out.append(f"{'target from the issue':<46} {'figure':>15}  {'goal':<9} result")
    for row in report["targets"]:
        out.append(f"{row['name']:<46} {row['figure']:>15}  {row['goal']:<9} {'PASS' if row['pass'] else 'MISS'}")
    return "\n".join(out)


def _routed_text(report: dict) -> list[str]:
    derived, observed, meta = report["derived"]["routed"], report.get("routed") or {}, report["meta"]
    deployments = meta.get("routed", {}).get("deployments", [])
    failing = observed.get("failing_provider")
    names = ", ".join(f"{d['provider']}" + (f" (fails {d['fail_percent']} %)" if d["fail_percent"] else "")
                      for d in deployments)
    out = [f"routed case: `{meta.get('routed', {}).get('model', 'auto')}` over {len(deployments)} deployments of "
           f"gpt-4o: {names}; direct-model case = the gateway rows (`gpt-4o`, one deployment)"]
    by_outcome = derived["attempts_by_outcome"]
    answered = sum(derived["gateway_answered"].values())
    rounds = ", ".join(_pct(v) for v in derived["throughput_ratio_c50_rounds"])
    cpu = derived["cpu_ratio"]
    out.append(f"routed/direct-model req/s at c=50 (json): {_pct(derived['throughput_ratio_c50'])} (rounds: {rounds}); "
               f"CPU per request routed/direct-model: c=1 {_times(cpu['json c=1'], 2)}, "
               f"c=50 {_times(cpu['json c=50'], 2)}")
    out.append(f"added p50 at c=1 (json), routed - direct-model: {derived['added_p50_ms_c1']:+.2f} ms, i.e. "
               f"{_signed_pct(derived['added_p50_share_c1'])} on the direct-model case's added p50 "
               f"({derived['direct_model_added_p50_ms_c1']:.2f} ms over the fake upstream)")
    by_status = Counter()
    for name, n in derived["gateway_answered"].items():
        by_status[name.rsplit("/", 1)[1]] += n
    statuses = ", ".join(f"HTTP {status}: {n}" for status, n in sorted(by_status.items()))
    out.append(f"client-visible errors: {derived['errors']} of {derived['client_requests']} measured requests, "
               f"{derived['warmup_errors']} of {derived['warmup_client_requests']} in warm-ups (wrk); gateway "
               f"answered {answered} in the measured runs ({statuses or 'n/a'})")
    outcomes = ", ".join(f"{outcome} {n}" for outcome, n in sorted(by_outcome.items()))
    out.append(f"upstream attempts per client request: {_num3(derived['upstream_attempts_per_request'])} "
               f"(cb_upstream_attempts_total: {outcomes or 'n/a'}; circuit_open = skipped, not sent)")
    per_provider: dict[str, list[str]] = {}
    for name, n in sorted(derived["attempts"].items()):
        provider, outcome = name.rsplit("/", 1)
        per_provider.setdefault(provider, []).append(f"{outcome} {n}")
    out.append("attempts by deployment: " + "; ".join(f"{p} {', '.join(v)}" for p, v in per_provider.items()))
    whole: dict[str, list[str]] = {}
    for name, n in sorted((observed.get("attempts_whole_run") or {}).items()):
        provider, outcome = name.rsplit("/", 1)
        whole.setdefault(provider, []).append(f"{outcome} {n}")
    whole_sent = sum(n for k, n in (observed.get("attempts_whole_run") or {}).items()
                     if not k.endswith("/circuit_open"))
    whole_answered = sum((observed.get("requests_whole_run") or {}).values())
    out.append(f"the same over the whole run, warm-ups included ({whole_answered} requests answered, "
               f"{_num3(whole_sent / whole_answered if whole_answered else math.nan)} upstream attempts per "
               "request): " + "; ".join(f"{p} {', '.join(v)}" for p, v in whole.items()))
    out.append(f"{'routed run':<20} {'wrk requests':>12} {'answered':>9} {'attempts/req':>12}  "
               f"{'failing: ok/failed/skipped':<27} {'(in warm-up)':<14} cb_circuit_state after (not closed)")
    for run in observed.get("runs", []):
        attempts = run.get("attempts", {})
        sent = sum(n for k, n in attempts.items() if not k.endswith("/circuit_open"))
        got = sum(run.get("requests", {}).values())
        flaky = "/".join(str(attempts.get(f"{failing}/{o}", 0)) for o in ("ok", "retryable_error", "circuit_open"))
        states = ", ".join(f"{p} {s}" for p, s in sorted(run.get("circuits_after", {}).items()) if s != "closed")
        warm = run.get("warmup_attempts", {})
        warm = "/".join(str(warm.get(f"{failing}/{o}", 0)) for o in ("ok", "retryable_error", "circuit_open"))
        label = f"{run['case']} round {run['round']}"
        out.append(f"{label:<20} {run.get('client_requests', 0):>12} {got:>9} "
                   f"{_num3(sent / got if got else math.nan):>12}  {flaky:<27} {'(' + warm + ')':<14} "
                   f"{states or 'all closed'}")
    watch = observed.get("circuit_watch") or {}
    if watch.get("watched"):
        opened = ", ".join(f"+{t:.1f}" for t in watch["opened_s_after_routed_load_began"])
        shares = ", ".join(f"{state} {share:.0%}" for state, share in sorted(watch["share_of_routed_time"].items()))
        out.append(f"{failing} circuit (its Redis record, polled every 0.1 s; changes undone within a poll are "
                   f"missed): opened {watch['openings_seen']}x, at {opened or '-'} s after routed load began "
                   f"(cool-down {watch['cooldown_s']:g} s); half-open trials seen {watch['half_open_trials_seen']}, "
                   f"closings seen {watch['closings_seen']}; during the measured routed runs: {shares or 'n/a'}")
    else:
        out.append(f"{failing} circuit: not observed in Redis ({watch.get('error') or 'no health record found'})")
    return out


def _minus(a: float, b: float) -> float:
    return a - b if not (math.isnan(a) or math.isnan(b)) else math.nan


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def _num(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.0f}"


def _times(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}x"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def _signed_pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.0%}"


def _num3(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"
