"""Shared fixtures. Everything runs against the machine's real Postgres and Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib
from django.conf import settings

pytest_plugins = ["tests.celery_worker"]  # the `worker` fixture: a real Celery worker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean_redis():
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield
    client.close()


@pytest.fixture
def redis_client():
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class ServerProcess:
    """`manage.py serve` as users run it, on free loopback ports, against the test database."""

    def __init__(self, *, env: dict | None = None, workers: int = 1, settings_module="cbplatform.settings.test"):
        self.openai_port = free_port()
        self.graphql_port = free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "OPENAI_HOST": "127.0.0.1",
            "OPENAI_PORT": str(self.openai_port),
            "GRAPHQL_HOST": "127.0.0.1",
            "GRAPHQL_PORT": str(self.graphql_port),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"cb-serve-{self.openai_port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.openai_port}"

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.graphql_port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--workers", str(self.workers)],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.openai_port), timeout=0.2), \
                        socket.create_connection(("127.0.0.1", self.graphql_port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture
def server_factory(transactional_db):
    """Start real server processes; they see rows the test commits (hence transactional_db)."""
    started: list[ServerProcess] = []

    def start(**kwargs) -> ServerProcess:
        server = ServerProcess(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def catalogue(django_db_blocker):
    """The seeded model catalogue. Transactional tests truncate tables, data migrations included,
    so tests that need the seed ask for it and get it re-applied when it is gone."""


    from apps.providers.models import ModelEntry

    with django_db_blocker.unblock():
        if not ModelEntry.objects.filter(provider__isnull=True).exists():
            reseed_catalogue()
    return ModelEntry.objects


def reseed_catalogue():
    """Re-run the catalogue's data migrations (after a transactional test truncated the table)."""
    import importlib

    from django.apps import apps as django_apps

    for name in ("0002_seed_catalogue", "0005_json_mode_for_anthropic_and_ollama"):
        module = importlib.import_module(f"apps.providers.migrations.{name}")
        (module.seed if hasattr(module, "seed") else module.enable)(django_apps, None)


def committed(fn, *args, **kwargs):
    """Run `fn` on its own thread, hence its own autocommitting DB connection, outside the test's
    transaction, so other processes (a gateway server) see the rows and on_commit hooks fire."""
    import threading

    from django.db import connections

    result: dict = {}

    def run():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in result:
        raise result["error"]
    return result.get("value")
