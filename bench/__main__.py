"""`python -m bench [--quick] [--profile]`: measure the gateway against the fake upstream and the baseline.

Steps: prepare the bench database (create, migrate, seed) -> start the fake upstream, the baseline
proxy and the gateway on free loopback ports -> check each answers correctly -> drive every case
against every target (interleaved, so drift on the shared machine hits all targets alike; the routed
target, `auto` over three deployments with one failing half the time, runs the non-stream cases, with
the gateway's /metrics read around each run and its failing circuit watched) -> time stream TTFB ->
read worker RSS -> print the table and targets, write bench-results/latest.json -> optionally profile a
gateway and a baseline worker -> stop everything, whatever happened.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from . import database, loadgen, profiling, report, routed, ttfb, wrk
from .procs import Proc, ProcessSet, cpu_seconds, free_port, rss_mib, wait_http, wait_port
from .workload import CASES, PATH, ROUTED_CASES, Traffic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (~1 minute in all)")
    parser.add_argument("--rounds", type=int, help="rounds per case, targets alternating (default 3, --quick 2)")
    parser.add_argument("--duration", type=int, help="seconds per target per round (default 4, --quick 2)")
    parser.add_argument("--warmup", type=int, help="seconds of unmeasured load before each measured run (default 1)")
    parser.add_argument("--ttfb-requests", type=int, help="sequential stream requests per target (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for baseline and gateway (default 2)")
    parser.add_argument("--profile", action="store_true",
                        help="then py-spy a gateway worker (direct-model and routed) and a baseline worker under c=50")
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument("--fresh-db", action="store_true", help="drop and re-create the bench database first")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.duration = args.duration or (2 if args.quick else 4)
    args.warmup = args.warmup if args.warmup is not None else 1
    args.ttfb_requests = args.ttfb_requests or (100 if args.quick else 200)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # Ctrl-C and SIGTERM unwind through the finally-blocks that stop every server. SIGINT is set
    # explicitly because a shell starting us in the background would otherwise have it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    driver, tool = _load_driver()
    meta = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "git": _git_revision(),
            "gateway_source": _source_fingerprint(), "tool": tool, "rounds": args.rounds,
            "duration_s": args.duration, "warmup_s": args.warmup, "workers": args.workers,
            "ttfb_requests": args.ttfb_requests, "cpus": os.cpu_count(),
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    with ProcessSet() as procs:
        targets, seeded, gateway, baseline = _start_everything(procs, args, log_dir)
        traffic = targets["gateway"].traffic
        meta["routed"] = {"model": seeded.routed["model"], "deployments": seeded.routed["deployments"]}
        _smoke_check(targets)
        flaky = next(d for d in seeded.routed["deployments"] if d["fail_percent"])
        with routed.CircuitWatch(database.REDIS_URL, flaky["deployment"]) as watch:
            observer = RoutedObserver(targets["routed"].url.removesuffix(PATH),
                                      {d["provider"] for d in seeded.routed["deployments"]}, watch)
            runs = _drive(driver, targets, args, observer)
        ttfbs = _measure_ttfb({name: targets[name] for name in report.TTFB_TARGETS}, args, traffic)
        rss = {"gateway": _rss(gateway), "baseline": _rss(baseline)}
        result = report.build(runs, ttfbs, rss, meta, routed=observer.result(flaky["provider"]))
        print("\n" + report.format_text(result), flush=True)
        (RESULTS / "latest.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        print(f"\nwrote {RESULTS / 'latest.json'}; server logs in {log_dir}", flush=True)
        if args.profile:
            _profile(driver, targets, args)
        elif not all(row["pass"] for row in result["targets"]):
            print("a target was missed: `python -m bench --profile` shows where a gateway worker spends its time")
    missed = not all(row["pass"] for row in result["targets"])
    return 1 if args.strict and missed else 0


@dataclass
class Target:
    url: str
    proc: Proc
    traffic: Traffic
    cases: tuple[str, ...] | None = None  # the cases it runs; None: all


class RoutedObserver:
    """Reads the gateway's /metrics around each measured routed run and points the circuit watch at it."""

    def __init__(self, gateway_root: str, providers: set[str], watch: routed.CircuitWatch):
        self.gateway_root, self.providers, self.watch = gateway_root, providers, watch
        self.runs: list[dict] = []
        # Only routed traffic moves the routed providers' counters, so the difference between the last scrape
        # and the one before a measured run is that run's warm-up.
        self.first = self.last = routed.scrape(gateway_root, providers)

    def warming_up(self) -> None:
        self.watch.load_starting()

    @contextlib.contextmanager
    def measuring(self, case: str, round_no: int):
        label = f"{case} round {round_no + 1}"
        before = routed.scrape(self.gateway_root, self.providers)
        warmup = routed.difference(self.last, before)
        self.watch.running(label)
        run = {"case": case, "round": round_no + 1}
        try:
            yield run
        finally:
            self.watch.running(None)
        time.sleep(0.2)  # let the last responses' accounting land before reading the counters
        self.last = routed.scrape(self.gateway_root, self.providers)
        run |= routed.difference(before, self.last)
        run["warmup_attempts"] = warmup["attempts"]
        self.runs.append(run)

    def result(self, failing_provider: str) -> dict:
        whole = routed.difference(self.first, self.last)
        # Answered routed requests: a routed provider's, or none chosen ("unknown": failed before any answered).
        answered = {name: n for name, n in whole["requests"].items()
                    if name.rsplit("/", 1)[0] in self.providers | {"unknown"}}
        return {"failing_provider": failing_provider, "runs": self.runs, "attempts_whole_run": whole["attempts"],
                "requests_whole_run": answered, "circuit_watch": self.watch.summary()}


# ---- setup -----------------------------------------------------------------------------------------------
def _start_everything(procs: ProcessSet, args, log_dir: Path):
    upstream_port, baseline_port, gateway_port, graphql_port = (free_port() for _ in range(4))
    upstream_url = f"http://127.0.0.1:{upstream_port}"

    _step("bench database: create if missing, migrate, seed")
    env = database.production_env(dict(os.environ))
    database.ensure_database(fresh=args.fresh_db)
    database.migrate(env, ROOT, log_dir)
    database.flush_redis()
    seeded = database.seed(env, ROOT, log_dir, upstream_url)

    _step(f"fake upstream on :{upstream_port}, baseline proxy on :{baseline_port}, gateway on :{gateway_port}")
    upstream = procs.start(_uvicorn("upstream", "bench.upstream_app:app", upstream_port, workers=1,
                                    env=dict(os.environ), log_dir=log_dir))
    baseline = procs.start(_uvicorn("baseline", "bench.baseline_app:app", baseline_port, workers=args.workers,
                                    env={**os.environ, "BENCH_UPSTREAM": upstream_url}, log_dir=log_dir))
    gateway_env = {**env, "OPENAI_HOST": "127.0.0.1", "OPENAI_PORT": str(gateway_port),
                   "GRAPHQL_HOST": "127.0.0.1", "GRAPHQL_PORT": str(graphql_port)}
    gateway = procs.start(Proc("gateway", [sys.executable, "manage.py", "serve", "--workers", str(args.workers),
                                           "--no-setup"], env=gateway_env, cwd=ROOT, log_dir=log_dir))
    wait_port(upstream_port, upstream)
    wait_port(baseline_port, baseline)
    wait_http(f"http://127.0.0.1:{gateway_port}/health", gateway)
    traffic = Traffic.for_key(seeded.api_key, seeded.model)
    gateway_url = f"http://127.0.0.1:{gateway_port}{PATH}"
    targets = {"direct": Target(upstream_url + PATH, upstream, traffic),
               "baseline": Target(f"http://127.0.0.1:{baseline_port}{PATH}", baseline, traffic),
               "gateway": Target(gateway_url, gateway, traffic),
               # The same gateway, another tenant's key, `auto` over its three deployments (see bench.seed).
               "routed": Target(gateway_url, gateway, Traffic.for_key(seeded.routed["api_key"],
                                                                      seeded.routed["model"]), ROUTED_CASES)}
    return targets, seeded, gateway, baseline


def _uvicorn(name: str, app: str, port: int, *, workers: int, env: dict, log_dir: Path) -> Proc:
    # The same server stack as `manage.py serve`: uvloop, httptools, no access log.
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers",
            str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
            "--lifespan", "on"]
    return Proc(name, argv, env=env, cwd=ROOT, log_dir=log_dir)


def _load_driver():
    if wrk.try_install():
        return wrk.run, "wrk"
    print("wrk is not installed and could not be installed: falling back to the asyncio+aiohttp load generator "
          "(lower, noisier absolute figures; ratios still comparable)", flush=True)
    return loadgen.run, "aiohttp (wrk unavailable)"


def _smoke_check(targets: dict) -> None:
    """Every target must answer both request kinds correctly before its speed means anything.

    Workers may still be starting after the port opens, so each target gets a few seconds to answer.
    """
    for name, target in targets.items():
        traffic = target.traffic
        answer = _post_until_ok(target.url, traffic.json_body, traffic.headers)
        if b'"chat.completion"' not in answer:
            raise RuntimeError(f"{name}: unexpected completion: {answer[:300]!r}")
        events = _post_until_ok(target.url, traffic.stream_body, traffic.headers).count(b"data: ")
        if events < 20:
            raise RuntimeError(f"{name}: stream too short ({events} events)")
        _step(f"{name} answers: completion ok, stream of {events} events")


def _post_until_ok(url: str, body: bytes, headers: dict, timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
                return response.read()
        except OSError as exc:  # HTTPError included
            detail = exc.read()[:500] if hasattr(exc, "read") else exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} does not answer: {detail!r}") from None
            time.sleep(0.3)


# ---- measuring -------------------------------------------------------------------------------------------
def _drive(driver, targets: dict, args, observer: RoutedObserver) -> dict:
    """Every case in rounds; within a round each target runs once, in an order that rotates per round.

    The machine is shared, so its speed drifts; short alternating runs put every target through the
    same conditions and let the report compare targets round by round (paired), not run against run.
    """
    runs: dict[str, dict[str, list]] = {
        name: {case.name: [] for case in CASES if target.cases is None or case.name in target.cases}
        for name, target in targets.items()}
    for case in CASES:
        names = [name for name in targets if case.name in runs[name]]
        for round_no in range(args.rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                watched = observer if name == "routed" else None
                result = _run_once(driver, targets[name], case, args, observer=watched, round_no=round_no)
                runs[name][case.name].append(result)
                _step(f"{case.name:<12} round {round_no + 1}/{args.rounds} {name:<9} {result.rps:>8.0f} req/s  "
                      f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  errors {result.errors}  "
                      f"cpu {result.cpu_us_per_request:.0f} us/req")
    return runs


def _run_once(driver, target: Target, case, args, *, observer: RoutedObserver | None = None, round_no: int = 0):
    traffic = target.traffic
    shape = {"body": traffic.body(stream=case.stream), "headers": traffic.headers,
             "connections": case.connections, "threads": case.threads}
    if observer is not None:
        observer.warming_up()
    warmup = None
    if args.warmup > 0:  # fresh connections and warm pools before the clock starts
        warmup = driver(target.url, duration=args.warmup, **shape)
    with (observer.measuring(case.name, round_no) if observer else contextlib.nullcontext({})) as observed:
        if warmup is not None:  # the routed case's failovers happen mostly here: its errors count too
            observed["warmup_client_requests"], observed["warmup_client_errors"] = warmup.requests, warmup.errors
        # CPU time of the target's own processes per request: far less sensitive than req/s to whatever
        # else the shared machine is running.
        pids = target.proc.server_pids()
        cpu_before = cpu_seconds(pids)
        result = driver(target.url, duration=args.duration, **shape)
        if result.requests:
            result.cpu_us_per_request = (cpu_seconds(pids) - cpu_before) / result.requests * 1e6
        observed["client_requests"], observed["client_errors"] = result.requests, result.errors
    return result


def _measure_ttfb(targets: dict, args, traffic: Traffic) -> dict:
    urls = {name: target.url for name, target in targets.items()}
    results = ttfb.measure(urls, body=traffic.stream_body, headers=traffic.headers, requests=args.ttfb_requests)
    for name, result in results.items():
        _step(f"stream TTFB {name:<9} p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
              f"errors {result.errors}")
    return results


def _rss(proc: Proc) -> list[float]:
    return [mib for mib in (rss_mib(pid) for pid in proc.worker_pids()) if mib is not None]


def _profile(driver, targets: dict, args) -> None:
    """py-spy one worker of the gateway, then of the baseline, while the load generator drives c=50.

    The baseline's profile is the reference: what is in the gateway's and not in the baseline's is
    the gateway's own cost. The routed target (the same gateway, `auto` over three deployments) is profiled
    for json too: what is in its profile and not in the gateway's is what routing over three costs.
    """
    for name, stream in (("gateway", False), ("gateway", True), ("routed", False), ("baseline", False),
                         ("baseline", True)):
        _profile_one(driver, name, targets[name], args, stream=stream)
    print(f"\ncollapsed stacks in {RESULTS}/profile-*.txt (open them in speedscope.app or flamegraph.pl)")


def _profile_one(driver, name: str, target: Target, args, *, stream: bool) -> None:
    label = f"{name}-{'stream' if stream else 'json'}"
    traffic = target.traffic
    workers = target.proc.worker_pids()
    if not workers:
        print(f"profile {label}: no worker process found")
        return
    pid = workers[0]
    raw_path = RESULTS / f"profile-{label}.txt"
    recorder = profiling.start_recording(pid, args.profile_seconds, raw_path)
    time.sleep(1)  # let py-spy attach before the load starts
    driver(target.url, body=traffic.body(stream=stream), headers=traffic.headers, connections=50, threads=2,
           duration=args.profile_seconds + 2)
    output, _ = recorder.communicate(timeout=60)
    if recorder.returncode != 0 or not raw_path.exists():
        print(f"profile {label} failed: {output.decode(errors='replace')[-1000:]}")
        return
    text = profiling.format_profile(f"{name} worker {pid}, {'stream' if stream else 'json'} c=50",
                                    profiling.summarise(raw_path))
    (RESULTS / f"profile-{label}-summary.txt").write_text(text + "\n")
    print("\n" + text, flush=True)


# ---- small helpers ----------------------------------------------------------------------------------------
def _step(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _source_fingerprint() -> str:
    """A hash of the code on the request path, so runs of a work tree that is being edited can be told apart."""
    digest = hashlib.sha1(usedforsecurity=False)
    for pattern in ("apps/gateway/*.py", "apps/providers/adapters/*.py", "cbplatform/asgi.py"):
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def _git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,  # noqa: S607
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,  # noqa: S607
                               text=True, check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    return "unknown"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\n[bench] interrupted; every server it started has been stopped", file=sys.stderr)
        sys.exit(130)
