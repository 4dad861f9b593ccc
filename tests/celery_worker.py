"""A real Celery worker (with its beat) as operators run it, on the test database and Redis — for tests of
anything that runs as a task (ledger ingestion, automatic transitions, agents, functions)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, database_url

_RECEIVED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] received")
_ENDED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (?:succeeded|raised|retry|failed)")


class Worker:
    """`celery -A cbplatform worker -B --pool=solo` (one process: easy to kill); its log in `tmp_path`."""

    def __init__(self, tmp_path, env=None, *, loglevel="info", pool="solo"):
        from django.conf import settings

        self.log = tmp_path / f"worker-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "cbplatform", "worker", "-B", f"--pool={pool}", "-l", loglevel,
             "--schedule", str(tmp_path / f"beat-{time.monotonic_ns()}")],
            cwd=ROOT, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "cbplatform.settings.test", "DATABASE_URL": database_url(),
                 "REDIS_URL": settings.REDIS_URL, **(env or {})})

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_idle(self, timeout: float = 15.0) -> bool:
        """Until every task the worker received has ended (its log says so), so that a test's teardown does not
        truncate tables under a task still writing (Postgres answers that with a deadlock)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.output()
            received = set(_RECEIVED.findall(log))
            if received <= set(_ENDED.findall(log)):
                return True
            time.sleep(0.05)
        return False

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker(tmp_path):
    """`worker(**env)` starts one; all are stopped after the test."""
    started: list[Worker] = []

    def start(**env):
        started.append(Worker(tmp_path, env))
        return started[-1]

    yield start
    for w in started:
        w.stop()


def wait_until(predicate, timeout=30.0, interval=0.1):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` passes (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
