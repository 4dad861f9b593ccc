"""`manage.py serve`: uvicorn (uvloop + httptools) on OPENAI_HOST:OPENAI_PORT and GRAPHQL_HOST:GRAPHQL_PORT."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import sys
import tempfile

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils.module_loading import import_string

# uvicorn's httptools protocol, a response's head and body sent in one write (see the module)
HTTP_PROTOCOL = "apps.core.http_protocol:CoalescingHttpToolsProtocol"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror} (is another server running?)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def prometheus_multiproc_dir(workers: int) -> str | None:
    """Give prometheus_client's multiprocess mode a fresh, empty directory before any worker starts.

    An operator-set PROMETHEUS_MULTIPROC_DIR is created if needed and wiped of old *.db files; otherwise,
    with more than one worker, a new temporary directory is exported (returned, to be removed on exit).
    With one worker and no variable, metrics stay in the in-process registry.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
        return None
    if workers <= 1:
        return None
    path = tempfile.mkdtemp(prefix="cb-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # spawned workers inherit it
    return path


class Command(BaseCommand):
    help = "Serve every route on both ports with uvicorn (the production server)."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=None, help="default: WEB_CONCURRENCY or CPU count")
        parser.add_argument("--no-setup", action="store_true", help="skip migrate/seed of the embedded default")

    def handle(self, *args, workers, no_setup, **options):
        import uvicorn
        from uvicorn.supervisors import Multiprocess

        if not no_setup:
            created: dict = {}
            for hook in settings.STARTUP_HOOKS:  # the composition root's start-up work; core knows only the names
                created.update(import_string(hook)(migrate=settings.AUTO_SETUP))
            self._announce(created)
        connections.close_all()  # no connection may cross into the worker processes

        workers = workers or settings.WEB_WORKERS
        if settings.EMBEDDED or not settings.REDIS_URL:
            # In-memory channel layer and counters live in one process; more workers would disagree.
            workers = 1
        endpoints = {(settings.OPENAI_HOST, settings.OPENAI_PORT), (settings.GRAPHQL_HOST, settings.GRAPHQL_PORT)}
        sockets = [bind(host, port) for host, port in sorted(endpoints)]
        config = uvicorn.Config(
            "cbplatform.asgi:application", loop="uvloop", http=HTTP_PROTOCOL, ws="websockets-sansio",
            lifespan="on", workers=workers, log_level=settings.LOG_LEVEL.lower(),
            access_log=settings.ACCESS_LOG, proxy_headers=True,
            server_header=False, timeout_graceful_shutdown=10,
        )
        where = ", ".join(f"http://{h}:{p}" for h, p in sorted(endpoints))
        self.stderr.write(f"cbplatform {settings.VERSION} serving on {where} with {workers} worker(s)")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
        metrics_dir = prometheus_multiproc_dir(workers)
        try:
            server = uvicorn.Server(config)
            if workers > 1:
                Multiprocess(config, sockets=sockets).run()
                return
            server.run(sockets=sockets)
            if not server.started:
                sys.exit(3)
        finally:
            if metrics_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)

    def _announce(self, created: dict) -> None:
        if "admin" in created:
            user, password = created["admin"]
            self.stderr.write(f"demo admin created: {user} / {password}  (change it at /admin/password_change/)")
        if "api_key" in created:
            self.stderr.write(f"demo API key (shown once): {created['api_key']}")
        if created.get("workflows"):
            self.stderr.write(f"example workflows loaded: {', '.join(created['workflows'])}")
        if created.get("functions"):
            self.stderr.write(f"example functions loaded: {', '.join(created['functions'])}")
        if created.get("agents"):
            self.stderr.write(f"example agents loaded: {', '.join(created['agents'])}")
