"""Prometheus metrics: the recording API, the circuit-state source, multiprocess aggregation over real
processes, and GET /metrics of a real `manage.py serve` with two workers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from apps.core.management.commands import serve as serve_command
from apps.gateway import metrics
from tests.conftest import ROOT

ENV = "PROMETHEUS_MULTIPROC_DIR"


@pytest.fixture(autouse=True)
def _no_circuit_source():
    metrics.set_circuit_source(None)
    yield
    metrics.set_circuit_source(None)


def call(method: str = "GET") -> tuple[int, dict, bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/metrics", "headers": []}
    asyncio.run(metrics.metrics_app(scope, receive, send))
    start, body = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"]


def scrape() -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label items): value} of one GET /metrics."""
    status, headers, body = call()
    assert status == 200
    assert headers["content-type"] == CONTENT_TYPE_LATEST
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def families(body: bytes) -> dict:
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


# ---- in-process -----------------------------------------------------------------------------------------
def test_record_request_in_process():
    before = scrape()
    usage = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
             "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 12}}
    metrics.record_request(endpoint="chat.completions", model="gpt-4o", provider="openai", status=200,
                           duration_s=0.42, ttft_s=0.08, usage=usage, cost=0.00123)
    metrics.record_request(endpoint="chat.completions", model="gpt-4o", provider="openai", status=200,
                           duration_s=3.0, usage={"prompt_tokens": 5, "completion_tokens": 1}, cost=0.5)
    metrics.record_request(endpoint="chat.completions", model="gpt-4o", provider="openai", status=429,
                           duration_s=0.002, error_type="rate_limit_exceeded")
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("cb_requests_total", endpoint="chat.completions", model="gpt-4o", provider="openai",
                 status="200") == 2
    assert delta("cb_requests_total", endpoint="chat.completions", model="gpt-4o", provider="openai",
                 status="429") == 1
    assert delta("cb_request_duration_seconds_count", endpoint="chat.completions", provider="openai") == 3
    assert delta("cb_request_duration_seconds_sum", endpoint="chat.completions",
                 provider="openai") == pytest.approx(3.422)
    assert delta("cb_request_duration_seconds_bucket", endpoint="chat.completions", provider="openai",
                 le="0.0025") == 1
    assert delta("cb_request_duration_seconds_bucket", endpoint="chat.completions", provider="openai",
                 le="0.5") == 2
    assert delta("cb_request_duration_seconds_bucket", endpoint="chat.completions", provider="openai",
                 le="120.0") == 3
    assert delta("cb_time_to_first_token_seconds_count", provider="openai") == 1
    assert delta("cb_time_to_first_token_seconds_sum", provider="openai") == pytest.approx(0.08)
    assert delta("cb_tokens_total", provider="openai", model="gpt-4o", kind="prompt") == 125
    assert delta("cb_tokens_total", provider="openai", model="gpt-4o", kind="completion") == 31
    assert delta("cb_tokens_total", provider="openai", model="gpt-4o", kind="cached") == 100
    assert delta("cb_tokens_total", provider="openai", model="gpt-4o", kind="reasoning") == 12
    assert delta("cb_cost_usd_total", provider="openai", model="gpt-4o") == pytest.approx(0.50123)
    assert delta("cb_errors_total", endpoint="chat.completions", type="rate_limit_exceeded") == 1
    assert not any(name.endswith("_created") for name, _ in after)


def test_attempts_inflight_and_unknown_labels():
    before = scrape()
    for outcome in ("ok", "ok", "retryable_error", "error", "circuit_open", "rate_limited", "bogus"):
        metrics.record_attempt(provider="anthropic", model="claude-3-haiku", outcome=outcome)
    metrics.record_request(endpoint="embeddings", model=None, provider="", status=502, duration_s=1.5,
                           usage={"prompt_tokens": "lots", "completion_tokens": None,
                                  "prompt_tokens_details": None, "completion_tokens_details": {"reasoning_tokens": -3}},
                           cost=-1)
    metrics.inflight(+1)
    metrics.inflight(+1)
    mid = scrape()
    metrics.inflight(-2)
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    for outcome, count in (("ok", 2), ("retryable_error", 1), ("error", 1), ("circuit_open", 1),
                           ("rate_limited", 1), ("unknown", 1)):
        assert delta("cb_upstream_attempts_total", provider="anthropic", model="claude-3-haiku",
                     outcome=outcome) == count
    assert delta("cb_requests_total", endpoint="embeddings", model="unknown", provider="unknown", status="502") == 1
    assert delta("cb_errors_total", endpoint="embeddings", type="unknown") == 1  # a 5xx without a type
    assert not any(name == "cb_tokens_total" and dict(labels)["provider"] == "unknown" for name, labels in after)
    assert value(mid, "cb_inflight_requests") - value(before, "cb_inflight_requests") == 2
    assert value(after, "cb_inflight_requests") == value(before, "cb_inflight_requests")


def test_label_values_are_bounded():
    label = metrics.LabelValues(max_values=2).bounded
    assert label("gpt-4o", "model") == "gpt-4o"
    assert label("gpt-4o-mini", "model") == "gpt-4o-mini"
    assert label("third-model", "model") == "other"
    assert label("gpt-4o", "model") == "gpt-4o"  # already admitted values keep their name
    assert label("openai", "provider") == "openai"  # one budget per label
    assert label("x" * 500, "provider") == "other"
    assert label(None, "provider") == "unknown"


def test_only_get_and_head():
    status, headers, body = call("POST")
    assert status == 405 and headers["allow"] == "GET, HEAD" and b"method_not_allowed" in body
    status, headers, body = call("HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


# ---- circuit state --------------------------------------------------------------------------------------
def test_circuit_state_from_the_registered_source():
    _, _, body = call()
    assert "cb_circuit_state" not in families(body)  # no source, no series

    async def source():
        return [("1:0:gpt-4o", "openai", "gpt-4o", "closed"),
                ("2:7:gpt-4o", "azure", "gpt-4o", "half_open"),
                ("3:0:claude-3-haiku", "anthropic", "claude-3-haiku", "open"),
                ("4:0:odd", "openai", "odd", "melted")]

    metrics.set_circuit_source(source)
    _, _, body = call()
    family = families(body)["cb_circuit_state"]
    assert family.type == "gauge"
    states = {s.labels["deployment"]: (s.labels["provider"], s.labels["model"], s.value) for s in family.samples}
    assert states == {"1:0:gpt-4o": ("openai", "gpt-4o", 0.0), "2:7:gpt-4o": ("azure", "gpt-4o", 1.0),
                      "3:0:claude-3-haiku": ("anthropic", "claude-3-haiku", 2.0)}
    assert "cb_requests" in families(body)  # the recorded metrics are still there


def test_a_failing_circuit_source_does_not_break_the_scrape():
    async def source():
        raise ConnectionError("redis is down")

    metrics.set_circuit_source(source)
    status, _, body = call()
    assert status == 200 and "cb_circuit_state" not in families(body) and "cb_requests" in families(body)


# ---- multiprocess ---------------------------------------------------------------------------------------
RECORDER = textwrap.dedent("""
    import sys

    import django

    django.setup()
    from apps.gateway import metrics

    n = int(sys.argv[1])
    for i in range(n):
        metrics.record_request(endpoint="chat.completions", model="gpt-4o", provider="openai", status=200,
                               duration_s=0.25, ttft_s=0.05, usage={"prompt_tokens": 10, "completion_tokens": 2},
                               cost=0.001)
        metrics.record_attempt(provider="openai", model="gpt-4o", outcome="ok")
    metrics.record_request(endpoint="chat.completions", model="gpt-4o", provider="openai", status=503,
                           duration_s=30, error_type="upstream_unavailable")
    metrics.inflight(n)
    print("ready", flush=True)
    sys.stdin.read()  # stay alive (and in flight) until the test closes stdin
""")


def test_counters_sum_over_real_processes(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    env = {**os.environ, ENV: str(tmp_path), "DJANGO_SETTINGS_MODULE": "cbplatform.settings.test",
           "PYTHONPATH": str(ROOT)}
    counts = (7, 11)
    procs = [subprocess.Popen([sys.executable, "-c", RECORDER, str(n)], cwd=ROOT, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for n in counts]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        assert len({p.pid for p in procs}) == 2
        assert {f.name for f in tmp_path.iterdir()} >= {f"counter_{p.pid}.db" for p in procs}

        live = scrape()
        total = sum(counts)
        labels = {"endpoint": "chat.completions", "model": "gpt-4o", "provider": "openai"}
        assert value(live, "cb_requests_total", **labels, status="200") == total
        assert value(live, "cb_requests_total", **labels, status="503") == 2
        assert value(live, "cb_request_duration_seconds_count", endpoint="chat.completions",
                     provider="openai") == total + 2
        assert value(live, "cb_request_duration_seconds_sum", endpoint="chat.completions",
                     provider="openai") == pytest.approx(total * 0.25 + 60)
        assert value(live, "cb_request_duration_seconds_bucket", endpoint="chat.completions", provider="openai",
                     le="0.25") == total
        assert value(live, "cb_time_to_first_token_seconds_count", provider="openai") == total
        assert value(live, "cb_tokens_total", provider="openai", model="gpt-4o", kind="prompt") == total * 10
        assert value(live, "cb_tokens_total", provider="openai", model="gpt-4o", kind="completion") == total * 2
        assert value(live, "cb_cost_usd_total", provider="openai", model="gpt-4o") == pytest.approx(total * 0.001)
        assert value(live, "cb_errors_total", endpoint="chat.completions", type="upstream_unavailable") == 2
        assert value(live, "cb_upstream_attempts_total", provider="openai", model="gpt-4o", outcome="ok") == total
        assert value(live, "cb_inflight_requests") == total  # livesum over the live processes
        assert not any(name.startswith(("python_", "process_")) for name, _ in live)  # merged files only
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait(timeout=30)
    assert all(proc.returncode == 0 for proc in procs)

    gone = scrape()  # counters survive their processes; a dead process's in-flight count does not
    assert value(gone, "cb_requests_total", endpoint="chat.completions", model="gpt-4o", provider="openai",
                 status="200") == sum(counts)
    assert value(gone, "cb_inflight_requests") == 0
    assert not list(tmp_path.glob("gauge_livesum_*.db"))


LOOP_RECORDER = textwrap.dedent("""
    import asyncio
    import sys

    import django

    django.setup()
    from apps.gateway import metrics

    async def main():
        for duration in (0.0005, 0.003, 0.003, 0.7, 45.0, 500.0):
            metrics.record_request(endpoint="chat.completions", model="m-loop", provider="p-loop", status=200,
                                   duration_s=duration)
        print("recorded", flush=True)
        await asyncio.sleep(metrics.FLUSH_SECONDS + 0.5)  # no scrape in this process: the timer flushes
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)

    asyncio.run(main())
""")


def test_records_made_on_an_event_loop_reach_a_scrape_of_another_process_within_a_second(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    env = {**os.environ, ENV: str(tmp_path), "DJANGO_SETTINGS_MODULE": "cbplatform.settings.test",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", LOOP_RECORDER], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "recorded"
        assert value(scrape(), "cb_requests_total", endpoint="chat.completions", model="m-loop",
                     provider="p-loop", status="200") == 0  # still in the process's tally
        assert proc.stdout.readline().strip() == "ready"
        live = scrape()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    labels = {"endpoint": "chat.completions", "provider": "p-loop"}
    assert value(live, "cb_requests_total", **labels, model="m-loop", status="200") == 6
    assert value(live, "cb_request_duration_seconds_count", **labels) == 6
    assert value(live, "cb_request_duration_seconds_sum", **labels) == pytest.approx(545.7065)
    # the same buckets as one observe() per value: cumulative counts at each bound
    expected = {"0.001": 1, "0.0025": 1, "0.005": 3, "0.5": 3, "1.0": 4, "30.0": 4, "60.0": 5, "120.0": 5,
                "+Inf": 6}
    for le, count in expected.items():
        assert value(live, "cb_request_duration_seconds_bucket", **labels, le=le) == count, le


def test_serve_prepares_a_fresh_multiproc_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "placeholder")
    monkeypatch.delenv(ENV)  # restored (to absent) after the test, though the helper sets it
    assert serve_command.prometheus_multiproc_dir(1) is None and ENV not in os.environ

    made = serve_command.prometheus_multiproc_dir(2)
    try:
        assert os.environ[ENV] == made and Path(made).is_dir() and not any(Path(made).iterdir())
    finally:
        os.rmdir(made)

    operator_dir = tmp_path / "prom"
    operator_dir.mkdir()
    (operator_dir / "counter_4242.db").write_bytes(b"stale")
    (operator_dir / "keep.txt").write_text("not ours")
    monkeypatch.setenv(ENV, str(operator_dir))
    assert serve_command.prometheus_multiproc_dir(2) is None  # the operator's directory is kept, only wiped
    assert os.environ[ENV] == str(operator_dir)
    assert [f.name for f in operator_dir.iterdir()] == ["keep.txt"]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


@pytest.mark.django_db(transaction=True)
def test_real_serve_with_two_workers_answers_metrics(server_factory):
    operator_set = ENV in os.environ
    server = server_factory(workers=2)

    workers = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        workers = [pid for pid in _children(server.proc.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        if len(workers) == 2:
            break
        time.sleep(0.1)
    assert len(workers) == 2, server.output()
    dirs = {_environ(pid).get(ENV) for pid in workers}
    assert len(dirs) == 1 and None not in dirs  # both workers inherited the same directory
    metrics_dir = Path(dirs.pop())

    for base in (server.url, server.graphql_url):
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            assert response.status == 200
            assert response.headers["content-type"] == CONTENT_TYPE_LATEST
            found = families(response.read())
        assert "cb_inflight_requests" in found
        assert not any(name.startswith(("python_", "process_")) for name in found)  # multiprocess mode is on

    deadline = time.monotonic() + 20  # each worker has its own files (written once it imported the module)
    while time.monotonic() < deadline:
        if {f"gauge_livesum_{pid}.db" for pid in workers} <= {f.name for f in metrics_dir.iterdir()}:
            break
        time.sleep(0.1)
    assert {f"gauge_livesum_{pid}.db" for pid in workers} <= {f.name for f in metrics_dir.iterdir()}
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/metrics", data=b"", method="POST"), timeout=10)
    assert refused.value.code == 405

    server.stop()
    assert server.proc.returncode == 0, server.output()
    if not operator_set:
        assert not metrics_dir.exists()  # the temporary directory goes with the server
