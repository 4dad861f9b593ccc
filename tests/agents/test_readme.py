"""The README's Agents section, run as written against the embedded default (SQLite, eager Celery, the simulated
provider): the content pipeline with one command, an agent through the API, and a token moved by an API call
whose agents run off the request thread."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tempfile
import time

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess

SECTION = (ROOT / "README.md").read_text().split("## Agents", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def embedded():
    with tempfile.TemporaryDirectory() as var:
        server = ServerProcess(settings_module="cbplatform.settings.local",
                               env={"DATABASE_URL": "", "REDIS_URL": "", "CB_VAR_DIR": var}).start(timeout=120)
        server.var_dir = var
        server.key = re.search(r"demo API key \(shown once\): (cb-\S+)", server.output()).group(1)
        yield server
        server.stop()


def _curl(command: str, server) -> dict:
    command = command.split("\n# ", maxsplit=1)[0].replace("$CB_KEY", server.key).replace("\\\n", " ")
    command = command.replace("http://localhost:3000", server.url)
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_readme_agents_section(embedded):
    assert "example agents loaded: content_pipeline" in embedded.output()
    run_example, curls = re.findall(r"```bash\n(.*?)```", SECTION, flags=re.S)
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "cbplatform.settings.local", "DATABASE_URL": "",
           "REDIS_URL": "", "CB_VAR_DIR": embedded.var_dir}
    result = subprocess.run(run_example.strip(), shell=True, cwd=ROOT, env=env, capture_output=True,  # noqa: S602
                            text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "instance completed" in result.stdout and "words," in result.stdout
    for name in ("researcher", "outliner", "writer", "editor"):
        assert re.search(rf"{name}\s+completed", result.stdout), result.stdout
    create, execute = curls.strip().split("\n\n")
    agent = _curl(create, embedded)
    assert agent["llm"] == {"temperature": 0.7, "max_tokens": 1000}
    done = _curl(execute.replace("<agent>", str(agent["id"])), embedded)
    assert done["status"] == "completed" and "Summarize: Agents are LLM workers." in done["output_text"]


def test_an_api_call_moving_a_token_does_not_wait_for_the_agents(embedded):
    headers = {"Authorization": f"Bearer {embedded.key}"}
    began = time.monotonic()
    answer = httpx.post(f"{embedded.url}/api/workflow-instances/", headers=headers, timeout=30, json={
        "workflow_id": "content_pipeline",
        "data": {"topic": "owls", "target_audience": "kids", "content_type": "poem"}}).json()
    assert time.monotonic() - began < 5 and answer["status"] == "running"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        instance = httpx.get(f"{embedded.url}/api/workflow-instances/{answer['id']}/", headers=headers,
                             timeout=30).json()
        if instance["status"] != "running":
            break
        time.sleep(0.2)
    assert instance["status"] == "completed", instance
    runs = httpx.get(f"{embedded.url}/api/agent-executions/?instance_id={answer['id']}", headers=headers,
                     timeout=30).json()["results"]
    assert sorted(r["agent_name"] for r in runs) == ["editor", "outliner", "researcher", "writer"]
    assert all(r["status"] == "completed" for r in runs)
