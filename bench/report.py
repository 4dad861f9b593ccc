"""Turning the measurements into the table, the derived figures and the targets, as text and JSON."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict

from .ttfb import TtfbResult
from .workload import CASES, LoadResult, combine

TARGETS = ("direct", "baseline", "gateway")
THROUGHPUT_GOAL = 0.60  # gateway req/s >= 60 % of the baseline's at c=50
ADDED_LATENCY_GOAL_MS = 1.0  # added p50 at c=1, and added stream TTFB p50, over the direct upstream


def build(rounds: dict[str, dict[str, list[LoadResult]]], ttfb: dict[str, TtfbResult], rss: dict[str, list[float]],
          meta: dict) -> dict:
    """`rounds`: target -> case -> one LoadResult per round, the targets alternating within each round."""
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
    return {
        "meta": meta,
        "runs": {t: {case: _as_dict(r) for case, r in by_case.items()} for t, by_case in runs.items()},
        "rounds": {t: {case: [_as_dict(r) for r in results] for case, results in by_case.items()}
                   for t, by_case in rounds.items()},
        "ttfb": {t: asdict(r) for t, r in ttfb.items()},
        "rss_mib": rss,
        "derived": derived,
        "targets": _targets(derived),
    }


def _paired(rounds: dict, a: str, b: str, case: str, compare) -> float:
    values = [compare(x, y) for x, y in zip(rounds[a][case], rounds[b][case], strict=True)]
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def _as_dict(result: LoadResult) -> dict:
    return asdict(result) | {"errors": result.errors}


def _targets(derived: dict) -> list[dict]:
    ratio, added = derived["throughput_ratio_c50"], derived["added_p50_ms_c1"]["gateway"]
    ttfb = derived["added_ttfb_p50_ms"]["gateway"]
    rows = [
        ("throughput c=50 json, gateway/baseline", _pct(ratio["json"]), f">= {THROUGHPUT_GOAL:.0%}",
         ratio["json"] >= THROUGHPUT_GOAL),
        ("throughput c=50 stream, gateway/baseline", _pct(ratio["stream"]), f">= {THROUGHPUT_GOAL:.0%}",
         ratio["stream"] >= THROUGHPUT_GOAL),
        ("added p50 c=1 json, gateway - direct", f"{added:.2f} ms", f"<= {ADDED_LATENCY_GOAL_MS:g} ms",
         added <= ADDED_LATENCY_GOAL_MS),
        ("added stream TTFB p50, gateway - direct", f"{ttfb:.2f} ms", f"<= {ADDED_LATENCY_GOAL_MS:g} ms",
         ttfb <= ADDED_LATENCY_GOAL_MS),
        ("gateway errors (non-2xx + socket), all runs", str(derived["gateway_errors"]), "0",
         derived["gateway_errors"] == 0),
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
            r = runs[target][case.name]
            out.append(f"{target:<9} {case.name:<12} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                       f"{r['requests']:>9} {r['errors']:>7} {_num(r['cpu_us_per_request']):>11}")
    out.append("")
    out.append(f"{'target':<9} {'stream TTFB':<12} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}")
    for target in TARGETS:
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
    out.append("")
    out.append(f"{'target from the issue':<46} {'figure':>10}  {'goal':<9} result")
    for row in report["targets"]:
        out.append(f"{row['name']:<46} {row['figure']:>10}  {row['goal']:<9} {'PASS' if row['pass'] else 'MISS'}")
    return "\n".join(out)


def _minus(a: float, b: float) -> float:
    return a - b if not (math.isnan(a) or math.isnan(b)) else math.nan


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def _num(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.0f}"


def _times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}x"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"
