"""The bench database: created if missing, migrated, and seeded with the bench tenants, keys and providers.

Django work runs in subprocesses with production settings, exactly as an operator's commands would,
so the benchmark never imports Django itself (and never mixes settings with the gateway it starts).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet
from psycopg import sql

DB_NAME = "cbplatform_bench"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
# A Redis database of the benchmark's own, flushed before each run.
REDIS_URL = "redis://127.0.0.1:6379/12"


@dataclass
class Seeded:
    api_key: str
    model: str
    routed: dict  # api_key, model, deployments: [{provider, deployment, fail_percent}] (see bench.seed)


def production_env(base: dict) -> dict:
    """The environment production settings need. Keys are fresh each run; the bench rows are re-created."""
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "cbplatform.settings.production",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        # The fake upstream is on loopback, which production refuses for tenant-supplied base URLs.
        "ALLOW_PRIVATE_UPSTREAMS": "true",
        "LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }


def ensure_database(*, fresh: bool = False, name: str = DB_NAME) -> None:
    """Create the bench database (or a bench's own, `name`) if missing; `fresh` drops it first (e.g. after
    switching to a branch whose migrations differ from those applied)."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(root: Path, log_dir: Path, *, fresh: bool) -> None:
    """For benchmarks that run Django in-process: the bench database, migrated, and Django set up on it with
    production settings (the environment's own values win, except the connection and secret settings)."""
    env = production_env(dict(os.environ))
    ensure_database(fresh=fresh)
    migrate(env, root, log_dir)
    os.environ.update({k: v for k, v in env.items() if k not in os.environ or k in (
        "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY", "LOG_LEVEL",
        "ALLOW_PRIVATE_UPSTREAMS")})
    import django

    django.setup()


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def migrate(env: dict, root: Path, log_dir: Path) -> None:
    _run([sys.executable, "manage.py", "migrate", "--no-input"], env, root, log_dir / "migrate.log")


def seed(env: dict, root: Path, log_dir: Path, upstream_root: str) -> Seeded:
    """Run bench.seed in a Django process; it prints one JSON line with the keys' secrets."""
    output = _run([sys.executable, "-m", "bench.seed", upstream_root], env, root, log_dir / "seed.log")
    data = json.loads(output.strip().splitlines()[-1])
    return Seeded(api_key=data["api_key"], model=data["model"], routed=data["routed"])


def _run(argv: list[str], env: dict, root: Path, log_path: Path) -> str:
    result = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout
