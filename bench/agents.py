"""`python -m bench.agents`: the agents' latencies on Postgres, the local Redis broker and a real Celery worker,
with the simulated provider (so the model's own time is ~0 and what is measured is ours).

- trigger → task start: a token fired into a bound place → its agent task claims the execution (the outbox
  listener's cost, the INSERT, the broker hop, the worker picking it up). Target p50 ≤ 20 ms.
- step CPU overhead: CPU seconds of one agent run in this process (claim, render, stream through the gateway's
  in-process API, coalesced events, finish) minus those of the bare `completion_api.stream` call it makes.
  Target ≤ 10 ms.
- the 4-agent content pipeline end to end (instance created → completed), through the worker. Target < 2 s.

Its own database (`cbplatform_bench_agents`), so a branch's migrations never clash with other benches'; the
benches' Redis db (`bench.database.REDIS_URL`), flushed first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import database

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "cbplatform_bench_agents"
REDIS_URL = database.REDIS_URL  # the benches' own Redis db, flushed before each run
TENANT = "bench-agents"
MODEL = "simulated/echo"
TARGETS = {"trigger_p50_ms": 20.0, "step_cpu_ms": 10.0, "pipeline_s": 2.0}
FLOW = {"id": "bench_flow", "places": ["a", "b", "c"], "initial_place": "a", "final_places": ["c"],
        "transitions": [{"id": "go", "from_places": ["a"], "to_place": "b"},
                        {"id": "done", "from_places": ["b"], "to_place": "c"}]}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.agents", description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=60, help="tokens fired into the bound place (default 60)")
    parser.add_argument("--steps", type=int, default=60, help="in-process agent runs for the CPU figure")
    parser.add_argument("--pipelines", type=int, default=5, help="content pipelines end to end (default 5)")
    parser.add_argument("--fresh", action="store_true", help="drop and re-create the bench database first")
    return parser.parse_args(argv)


def setup(log_dir: Path, *, fresh: bool) -> dict:
    env = database.production_env(dict(os.environ))
    env.update({"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}", "REDIS_URL": REDIS_URL,
                "CB_SIMULATED_PROVIDER": "true", "ROUTE_LOG": "off"})
    database.ensure_database(fresh=fresh, name=DB_NAME)
    database.migrate(env, ROOT, log_dir)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    os.environ.update(env)
    import django

    django.setup()
    return env


def start_worker(env: dict, log_dir: Path) -> subprocess.Popen:
    log = (log_dir / "worker.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "cbplatform", "worker", "--pool=solo",  # noqa: S603
                             "-l", "warning"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def prepare():
    from apps.agents import services
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Tenant
    from apps.workflows import services as workflow_services

    Tenant.objects.filter(slug=TENANT).delete()
    tenant = tenant_services.tenant_create(slug=TENANT)
    workflow_services.workflow_save(tenant, definition=FLOW)
    agent = services.agent_create(tenant, name="bench", model=MODEL, user_template="Summarise {topic}.")
    services.place_agent_create(tenant, agent=agent, workflow="bench_flow", place="b")
    services.example_load(tenant, name="content_pipeline", model=MODEL)
    return tenant, agent


def wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise TimeoutError("timed out")


SPLITS: list = []  # (firing → execution row, execution row → claim) per token, for the breakdown


def trigger_latency(tenant, count: int) -> list[float]:
    """ms from the transition_fired event (the token entering the bound place) to the task's claim."""
    from apps.agents.models import AgentExecution
    from apps.workflows import services as workflow_services
    from apps.workflows.models import Token, WorkflowEvent

    out = []
    for _ in range(count + 3):
        instance = workflow_services.instance_create(tenant, workflow_id="bench_flow", data={"topic": "owls"})
        token = Token.objects.get(instance=instance)
        workflow_services.transition_fire(tenant, transition_id="go", token_id=token.id)
        run = wait(lambda token=token: AgentExecution.objects.filter(token_id=token.id, status="completed").first())
        fired = WorkflowEvent.objects.get(instance_id=instance.id, type="transition_fired")
        out.append((run.started_at - fired.created_at).total_seconds() * 1000)
        SPLITS.append(((run.created_at - fired.created_at).total_seconds() * 1000,
                       (run.started_at - run.created_at).total_seconds() * 1000))
    return out[3:]  # the first runs warm the worker's runtime


def step_cpu(tenant, agent, count: int) -> tuple[list[float], list[float]]:
    """CPU ms per agent run in this process, and per bare completion_api.stream call of the same request."""
    from apps.agents import loop, runner
    from apps.agents.models import AgentExecution
    from apps.gateway import completion_api

    body = {"model": MODEL, "messages": [{"role": "user", "content": "Summarise owls."}], "stream": True,
            "stream_options": {"include_usage": True}, "temperature": 0.7, "max_tokens": 1000}

    async def bare():
        async for _ in completion_api.stream(tenant.id, body, agent_id=str(agent.id)):
            pass

    runs, bares = [], []
    for i in range(count + 3):
        execution = AgentExecution.objects.create(tenant=tenant, agent=agent, input={"topic": "owls"},
                                                  model_requested=agent.model, max_attempts=1)
        began = time.process_time()
        runner.execution_run(str(execution.id), 1)
        used = time.process_time() - began
        began = time.process_time()
        loop.submit(bare()).result(30)
        bare_used = time.process_time() - began
        if i >= 3:
            runs.append(used * 1000)
            bares.append(bare_used * 1000)
    asyncio.run_coroutine_threadsafe(completion_api.close(), loop.loop()).result(10)
    return runs, bares


def pipelines(tenant, count: int) -> list[float]:
    from apps.workflows import services as workflow_services
    from apps.workflows.models import WorkflowInstance

    out = []
    for _ in range(count):
        began = time.monotonic()
        instance = workflow_services.instance_create(tenant, workflow_id="content_pipeline", data={
            "topic": "owls", "target_audience": "engineers", "content_type": "blog post"})
        wait(lambda instance=instance: WorkflowInstance.objects.get(pk=instance.pk).status != "running", 60)
        status = WorkflowInstance.objects.get(pk=instance.pk).status
        if status != "completed":
            raise RuntimeError(f"pipeline ended {status}")
        out.append(time.monotonic() - began)
    return out


def pct(values, q) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv=None) -> int:
    args = parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    env = setup(log_dir, fresh=args.fresh)
    worker = start_worker(env, log_dir)
    try:
        tenant, agent = prepare()
        latency = trigger_latency(tenant, args.tokens)
        pipeline = pipelines(tenant, args.pipelines)
    finally:
        worker.terminate()
        worker.wait(15)
    runs, bares = step_cpu(tenant, agent, args.steps)
    overhead = [r - b for r, b in zip(runs, bares, strict=True)]
    rows = [
        ("trigger → task start p50 (ms)", statistics.median(latency), TARGETS["trigger_p50_ms"],
         f"p90 {pct(latency, 0.9):.1f}, n={len(latency)}"),
        ("  of which: firing → execution row (ms)", statistics.median(a for a, _ in SPLITS[3:]), None, "p50"),
        ("  of which: execution row → task claim (ms)", statistics.median(b for _, b in SPLITS[3:]), None, "p50"),
        ("agent step CPU beyond the LLM call (ms)", statistics.median(overhead), TARGETS["step_cpu_ms"],
         f"run {statistics.median(runs):.1f} − bare stream {statistics.median(bares):.1f}, n={len(runs)}"),
        ("4-agent pipeline end to end (s)", statistics.median(pipeline), TARGETS["pipeline_s"],
         f"min {min(pipeline):.2f}, max {max(pipeline):.2f}, n={len(pipeline)}"),
    ]
    print(f"bench.agents (logs in {log_dir})")
    for name, value, target, detail in rows:
        if target is None:
            print(f"  {name:<44} {value:8.2f}  ({detail})")
            continue
        verdict = "PASS" if value <= target else "MISS"
        print(f"  {name:<44} {value:8.2f}  target {target:<5g} {verdict}  ({detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
