"""`manage.py runserver` (daphne, through Channels) keeps working for development."""

import subprocess
import sys
import tempfile
import time

import httpx

from tests.conftest import ROOT, free_port


def test_migrate_then_runserver_serves_everything():
    with tempfile.TemporaryDirectory() as var:
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "CB_VAR_DIR": var,
               "DJANGO_SETTINGS_MODULE": "cbplatform.settings.local"}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
        port = free_port()
        proc = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert httpx.get(f"{base}/health", timeout=2).json()["status"] == "healthy"
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "runserver did not start"
                    time.sleep(0.2)
            answer = httpx.post(f"{base}/v1/chat/completions", timeout=10, json={
                "model": "auto", "messages": [{"role": "user", "content": "dev"}]}).json()
            assert answer["choices"][0]["message"]["content"] == "Simulated reply: dev"
            assert httpx.get(f"{base}/admin/login/", timeout=10).status_code == 200
        finally:
            proc.terminate()
            proc.wait(10)
