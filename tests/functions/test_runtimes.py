"""Each runtime through the API and a real Celery worker: http (a local aiohttp receiver that checks the HMAC
signature), python, command (output, timeout, bad output, non-zero exit, resource limits, clean environment)
and container (no engine configured: a clear failure, nothing faked)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import threading
import time

import pytest
from aiohttp import web

from tests import factories
from tests.celery_worker import wait_until
from tests.conftest import free_port

from .conftest import finished, python_function

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """An HTTP endpoint for http functions: verifies the signature as a user's receiver would."""

    def __init__(self, secret: str):
        self.secret = secret
        self.port = free_port()
        self.requests: list[dict] = []
        self.failures_left = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.started = threading.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-CB-Timestamp", "")
        expected = "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, request.headers.get("X-CB-Signature", ""))
        self.requests.append({"body": json.loads(body), "valid": valid, "headers": dict(request.headers),
                              "path": request.path})
        if not valid or abs(time.time() - int(timestamp or 0)) > 300:
            return web.json_response({"error": "bad signature"}, status=401)
        if request.path == "/flaky" and self.failures_left > 0:
            self.failures_left -= 1
            return web.json_response({"error": "busy"}, status=503)
        if request.path == "/list":
            return web.json_response([1, 2])
        data = json.loads(body)
        return web.json_response({"shout": data.get("text", "").upper()})

    def _serve(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.started.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        self.started.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def run(api, function_id, data, *, timeout=30.0):
    response = api.post(f"/api/functions/{function_id}/execute/", {"input": data}, format="json")
    assert response.status_code == 202, response.json()
    return wait_until(lambda: finished(response.json()["id"]), timeout=timeout)


def test_http_posts_signed_json_and_takes_the_json_answer(fn_worker, api):
    secret = "s3cret-for-the-receiver-0123"
    with Receiver(secret) as receiver:
        created = api.post("/api/functions/", {
            "name": "shout", "runtime": "http", "config": {"url": f"http://127.0.0.1:{receiver.port}/shout",
                                                           "headers": {"X-Team": "blue"}},
            "hmac_secret": secret, "max_attempts": 3, "retry_delay_seconds": 0.2,
            "output_schema": {"type": "object", "required": ["shout"]}}, format="json")
        assert created.status_code == 201, created.json()
        body = created.json()
        assert body["has_secret"] is True and "hmac_secret" not in body  # given, so not echoed
        done = run(api, body["id"], {"text": "hello"})
        assert done.status == "completed", done.error
        assert done.output == {"shout": "HELLO"}
        request = receiver.requests[-1]
        assert request["valid"] and request["body"] == {"text": "hello"}
        assert request["headers"]["X-Team"] == "blue" and request["headers"]["X-CB-Execution-Id"] == str(done.id)

        # 503 twice, then 200: retried with backoff (http_5xx is retryable by default).
        flaky = api.patch(f"/api/functions/{body['id']}/",
                          {"config": {"url": f"http://127.0.0.1:{receiver.port}/flaky"}}, format="json")
        assert flaky.status_code == 200 and flaky.json()["version"] == 2
        receiver.failures_left = 2
        done = run(api, body["id"], {"text": "again"})
        assert done.status == "completed" and done.attempts == 3
        assert [entry["outcome"] for entry in done.logs] == ["http_5xx", "http_5xx", "ok"]

        # An answer that is not an object fails as bad_output (not retried by default).
        api.patch(f"/api/functions/{body['id']}/", {"config": {"url": f"http://127.0.0.1:{receiver.port}/list"}},
                  format="json")
        done = run(api, body["id"], {"text": "x"})
        assert done.status == "failed" and done.error_code == "bad_output" and done.attempts == 1

    # A wrong secret: the receiver refuses (401 = http_4xx, not retried).
    with Receiver("another-secret-entirely-xyz") as receiver:
        api.patch(f"/api/functions/{body['id']}/",
                  {"config": {"url": f"http://127.0.0.1:{receiver.port}/shout"}}, format="json")
        done = run(api, body["id"], {"text": "x"})
        assert done.status == "failed" and done.error_code == "http_4xx" and done.attempts == 1
        assert receiver.requests[-1]["valid"] is False


def test_http_generates_a_secret_shown_once_and_refuses_private_urls_when_not_allowed(api, settings):
    created = api.post("/api/functions/", {"name": "gen", "runtime": "http",
                                           "config": {"url": "http://127.0.0.1:9/x"}}, format="json")
    assert created.status_code == 201
    secret = created.json()["hmac_secret"]
    assert len(secret) >= 32
    again = api.get(f"/api/functions/{created.json()['id']}/").json()
    assert "hmac_secret" not in again and again["has_secret"] is True
    from apps.functions.models import Function

    stored = Function.objects.get(pk=created.json()["id"])
    assert secret not in stored.secret_encrypted and stored.secret() == secret
    settings.FUNCTIONS_ALLOW_PRIVATE_URLS = False
    refused = api.post("/api/functions/", {"name": "private", "runtime": "http",
                                           "config": {"url": "http://10.0.0.5/hook"}}, format="json")
    assert refused.status_code == 400 and "private address" in refused.json()["config"][0]
    bad = api.post("/api/functions/", {"name": "ftp", "runtime": "http", "config": {"url": "ftp://x"}},
                   format="json")
    assert bad.status_code == 400 and "config" in bad.json()


def test_python_builtin_word_count(fn_worker, api):
    function = python_function(api, "apps.functions.builtins.word_count")
    done = run(api, function["id"], {"text": "The quick brown fox jumps over the lazy dog"})
    assert done.status == "completed" and done.output == {"words": 9, "reading_time_minutes": 1}
    waited = api.post(f"/api/functions/{function['id']}/execute/", {"input": {"text": "a b"}, "wait": True},
                      format="json")
    assert waited.status_code == 200 and waited.json()["status"] == "completed"
    assert waited.json()["output"] == {"words": 2, "reading_time_minutes": 1}
    refused = api.post("/api/functions/", {"name": "os", "runtime": "python", "config": {"callable": "os.system"}},
                       format="json")
    assert refused.status_code == 400 and "FUNCTIONS_PYTHON_MODULES" in refused.json()["config"][0]
    imported = api.post("/api/functions/", {"name": "imp", "runtime": "python",
                                            "config": {"callable": "apps.functions.builtins.django_slugify"}},
                        format="json")
    assert imported.status_code == 400 and "not a function defined in" in imported.json()["config"][0]


def staff_api(tenant):
    from rest_framework.test import APIClient

    from apps.tenants.models import Membership

    user = factories.user(tenant_obj=tenant, role=Membership.Role.OWNER, is_staff=True)
    client = APIClient()
    client.force_login(user)
    client.tenant = tenant
    return client


def command(client, script: str, **fields) -> dict:
    response = client.post("/api/functions/", {"name": fields.pop("name", f"cmd-{time.monotonic_ns()}"),
                                               "runtime": "command",
                                               "config": {"command": [sys.executable, "-c", script],
                                                          **fields.pop("config", {})}, **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


ECHO = """
import json, os, sys
data = json.load(sys.stdin)
print("working...", file=sys.stderr)
print("not the output")
print(json.dumps({"got": data, "env": sorted(os.environ), "same": json.loads(os.environ["INPUT_DATA"]) == data,
                  "trigger": os.environ["TRIGGER_EVENT"], "execution": os.environ["EXECUTION_ID"]}))
"""


def test_command_reads_stdin_prints_json_in_a_clean_environment(fn_worker, api, monkeypatch):
    monkeypatch.setenv("CB_SECRET_OF_THE_HOST", "do-not-leak")
    staff = staff_api(api.tenant)
    function = command(staff, ECHO, config={"env": {"GREETING": "hi"}})
    done = run(api, function["id"], {"n": 1})
    assert done.status == "completed", (done.error, done.stderr)
    assert done.output["got"] == {"n": 1} and done.output["same"] is True
    assert done.output["trigger"] == "api" and done.output["execution"] == str(done.id)
    assert set(done.output["env"]) <= {"PATH", "LANG", "HOME", "GREETING", "INPUT_DATA", "TRIGGER_EVENT",
                                       "EXECUTION_ID", "FUNCTION_ID", "LC_CTYPE"}
    assert "working..." in done.stderr and "not the output" in done.stdout


COMMAND_FAILURES = [
    ("import time; time.sleep(30)", {"timeout_seconds": 1}, "timeout", "timeout", "Killed after 1s"),
    ("print('hello')", {}, "failed", "bad_output", "not JSON"),
    ("print('[1]')", {}, "failed", "bad_output", "not an object"),
    ("import sys; print('oops', file=sys.stderr); sys.exit(3)", {}, "failed", "exit_code", "status 3: oops"),
    ("while True: pass", {"config": {"limits": {"cpu_seconds": 1}}}, "failed", "resource_limit", "CPU time"),
    ("x = bytearray(400 * 1024 * 1024)", {"config": {"limits": {"memory_mb": 100}}}, "failed", "exit_code",
     "MemoryError"),
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of the process being killed.
    ("open('big', 'wb').write(b'x' * 3 * 1024 * 1024)", {"config": {"limits": {"file_size_mb": 1}}}, "failed",
     "exit_code", "File too large"),
]


def test_command_failures(fn_worker, api):
    """Timeout, bad output, non-zero exit and each resource limit (one test: a database flush costs ~2 s)."""
    staff = staff_api(api.tenant)
    started = time.monotonic()
    runs = []
    for script, fields, *expected in COMMAND_FAILURES:
        function = command(staff, script, **fields)
        response = api.post(f"/api/functions/{function['id']}/execute/", {"input": {}}, format="json")
        runs.append((response.json()["id"], expected))
    for run_id, (status, code, message) in runs:
        done = wait_until(lambda run_id=run_id: finished(run_id), timeout=30)
        assert done, f"{run_id} did not finish"
        assert (done.status, done.error_code) == (status, code), (message, done.error, done.stderr[-300:])
        assert message in done.error + done.stderr
    assert time.monotonic() - started < 40


def test_command_output_is_read_in_full_and_logs_are_cut(fn_worker, api):
    staff = staff_api(api.tenant)
    script = ("import json, sys; sys.stdout.write('noise ' * 300000 + '\\n');"
              "print(json.dumps({'items': ['x' * 100] * 1000}))")
    function = command(staff, script)
    done = run(api, function["id"], {})
    assert done.status == "completed", (done.error, done.stderr[-300:])
    assert len(done.output["items"]) == 1000  # a 100 kB output line, read whole
    assert len(done.stdout) <= 65536 and "bytes cut] …" in done.stdout  # 1.9 MB of stdout kept as head and tail


def test_container_without_an_engine_fails_clearly(fn_worker, api):
    staff = staff_api(api.tenant)
    created = staff.post("/api/functions/", {
        "name": "pdf", "runtime": "container", "secret_env": {"TOKEN": "t0ps3cret"},
        "config": {"image": "alpine:3", "command": ["sh", "-c", "cat"], "env": {"MODE": "fast"},
                   "mounts": [{"source": "/srv/data", "target": "/data", "read_only": True}],
                   "memory_mb": 256, "cpus": 0.5}, "timeout_seconds": 60}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["config"]["image"] == "alpine:3" and body["has_secret"] and "secret_env" not in body
    done = run(api, body["id"], {"a": 1})
    assert done.status == "failed" and done.error_code == "no_engine"
    assert "No container engine configured" in done.error
    bad = staff.post("/api/functions/", {"name": "bad", "runtime": "container", "config": {"mounts": "x"}},
                     format="json")
    assert bad.status_code == 400 and any("image" in m for m in bad.json()["config"])


def test_container_with_an_unreachable_engine_goes_through_the_docker_cli(api, settings, tmp_path):
    """The docker CLI is installed here but no daemon runs: the run reaches the CLI, which reports the engine
    unreachable (exit 125) — a `connection` error, retried when the function names it."""
    import shutil

    from apps.functions import services
    from apps.functions.models import Function
    from apps.functions.runtimes.base import RunContext
    from apps.functions.runtimes.container import docker_argv

    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on this machine")
    settings.DOCKER_HOST = f"unix://{tmp_path}/no-engine.sock"
    staff = staff_api(api.tenant)
    created = staff.post("/api/functions/", {
        "name": "boxed", "runtime": "container", "secret_env": {"API_TOKEN": "t0ps3cret"},
        "config": {"image": "alpine:3", "command": "cat", "env": {"MODE": "fast"}}, "timeout_seconds": 20},
        format="json").json()
    function = Function.objects.get(pk=created["id"])
    argv = docker_argv(function, RunContext("e", "f", "manual", 5.0), {"API_TOKEN": "t0ps3cret"}, "cbfn-e-1")
    assert "t0ps3cret" not in " ".join(argv) and argv[argv.index("API_TOKEN") - 1:][:2] == ["--env", "API_TOKEN"]
    assert argv[-2:] == ["alpine:3", "cat"] and "--network" in argv
    done = services.function_run_now(api.tenant, function_id=function.id, input={"a": 1})
    assert done.status == "failed" and done.error_code == "connection", done.error
    assert "Cannot connect to the Docker daemon" in done.error
