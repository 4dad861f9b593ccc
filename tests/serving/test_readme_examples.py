"""The README's examples, run as written against the embedded default (`make run`'s settings)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, ServerProcess

README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def embedded():
    with tempfile.TemporaryDirectory() as var:
        server = ServerProcess(settings_module="cbplatform.settings.local",
                               env={"DATABASE_URL": "", "REDIS_URL": "", "CB_VAR_DIR": var}).start(timeout=90)
        server.var_dir = var
        yield server
        server.stop()


def localize(text: str, server: ServerProcess) -> str:
    return text.replace("http://localhost:3000", server.url)


def test_the_readme_has_exactly_two_setup_commands():
    setup = README.split("## Set up", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in setup.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make run", "make test"]


def test_curl_examples(embedded):
    curls = [b for b in blocks("bash") if b.lstrip().startswith("curl http://localhost:3000/v1")]
    assert curls
    for block in curls:
        for command in localize(block, embedded).replace("\\\n", " ").strip().split("\n\n"):
            result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
            # Streams split the reply into pieces: OpenAI's chunks and Anthropic's text deltas.
            assert any(t in result.stdout for t in ("Simulated reply", '"content":"Simulated"',
                                                    '"text":"Simulated"')), result.stdout
    assert "demo API key (shown once): cb-" in embedded.output()
    assert "demo admin created" in embedded.output()


def test_python_sdk_example(embedded):
    (example,) = [b for b in blocks("python") if "from openai import OpenAI" in b]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(localize(example, embedded), "README.md", "exec"), {})  # noqa: S102 - our own README
    lines = out.getvalue().splitlines()
    assert lines == ["Simulated reply: Hello!", "Simulated reply: Stream to me"]


def test_realtime_examples(embedded):
    """The Real-time section's WebSocket completion and GraphQL subscription, on the in-memory channel layer
    (before the management examples add providers to the demo tenant)."""
    section = README.split("## Real-time streams", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(examples) == 2
    outputs = []
    for example in examples:
        code = (example.replace("ws://localhost:3000", embedded.url.replace("http://", "ws://"))
                .replace("ws://localhost:4000", embedded.graphql_url.replace("http://", "ws://")))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
        outputs.append(out.getvalue().splitlines())
    completion, subscription = outputs
    assert completion[0] == "Simulated reply: Hello over a socket"
    assert completion[1].startswith("completed ") and " tokens, $ " in completion[1]
    assert subscription == ["workflow_saved"]


def test_routing_example(embedded):
    (setup,) = [b for b in blocks("python") if "from openai import OpenAI" in b]
    (routing,) = [b for b in blocks("python") if "circuit_breaker" in b]
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(localize(setup, embedded), "README.md", "exec"), scope)  # noqa: S102 - our own README
    exec(compile(routing, "README.md", "exec"), scope)  # noqa: S102 - raises if the gateway refuses it


def test_responses_api_example(embedded):
    """The Responses API section's SDK example: a stored response continued and retrieved (in-memory store)."""
    (setup,) = [b for b in blocks("python") if "from openai import OpenAI" in b]
    (example,) = [b for b in blocks("python") if "client.responses" in b]
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(localize(setup, embedded), "README.md", "exec"), scope)  # noqa: S102 - our own README
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert out.getvalue() == "Simulated reply: What is my name?\n"
    first, follow_up = scope["first"], scope["follow_up"]
    assert follow_up.previous_response_id == first.id
    # the follow-up carried the first exchange (two more messages) to the provider
    assert follow_up.usage.input_tokens > first.usage.input_tokens + 8


def test_embedded_default_health(embedded):
    import httpx

    report = httpx.get(f"{embedded.url}/health", timeout=10).json()
    assert report["status"] == "healthy" and report["embedded"] is True and "redis" not in report["checks"]


def test_embedded_default_writes_the_usage_ledger_in_process(embedded):
    import sqlite3

    import httpx

    response = httpx.post(f"{embedded.url}/v1/chat/completions", timeout=10,
                          json={"model": "auto", "messages": [{"role": "user", "content": "count me"}]})
    request_id = response.headers["x-cb-request-id"]
    with sqlite3.connect(f"{embedded.var_dir}/cbplatform.sqlite3") as db:
        row = db.execute("SELECT model_served, status, prompt_tokens, completion_tokens, t.slug "
                         "FROM billing_usagerecord u JOIN tenants_tenant t ON t.id = u.tenant_id "
                         "WHERE request_id = ?", (request_id,)).fetchone()
    assert row is not None and row[0] == "simulated-echo" and row[1] == 200 and row[2] > 0 and row[3] > 0
    assert row[4] == "demo"  # keyless requests act for the demo tenant, so they show on its dashboard


def test_workflow_examples(embedded):
    """The Workflows section as written: load the examples, start a document review, fire `submit`."""
    import json

    assert "example workflows loaded: " in embedded.output() and "document_review" in embedded.output()
    secret = re.search(r"demo API key \(shown once\): (cb-\S+)", embedded.output()).group(1)
    section = README.split("## Workflows", 1)[1].split("\n## ", 1)[0]
    load, curls = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "cbplatform.settings.local", "DATABASE_URL": "",
           "REDIS_URL": "", "CB_VAR_DIR": embedded.var_dir}
    result = subprocess.run(load.strip(), shell=True, cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S602
                            timeout=120)
    assert result.returncode == 0, result.stderr
    create, fire = [c for c in localize(curls, embedded).split("\n\n")]
    create = create.split("\n# ")[0].replace("$CB_KEY", secret).replace("\\\n", " ")
    answer = json.loads(subprocess.run(shlex.split(create), capture_output=True, text=True, timeout=30).stdout)
    assert answer["status"] == "running" and answer["marking"] == {"draft": 1}
    token = answer["tokens"][0]["id"]
    fire = fire.split("\n# ")[0].replace("$CB_KEY", secret).replace("<token>", str(token)).replace("\\\n", " ")
    fired = json.loads(subprocess.run(shlex.split(fire), capture_output=True, text=True, timeout=30).stdout)
    assert fired["token"]["id"] == token and fired["token"]["place"] == "pending_review"


def test_function_examples(embedded):
    """The Functions section as written: create a python function and run it, waiting for the result."""
    import json

    assert "example functions loaded: word_count" in embedded.output()
    secret = re.search(r"demo API key \(shown once\): (cb-\S+)", embedded.output()).group(1)
    section = README.split("## Functions", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    result = subprocess.run(["bash", "-euc", localize(block, embedded)], env={"PATH": "/usr/bin:/bin",
                            "CB_KEY": secret}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "completed" and answer["output"] == {"words": 5, "reading_time_minutes": 1}


def _run_curl(command: str) -> str:
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_graphql_examples(embedded):
    """The GraphQL section's curl commands as written (form-encoded JSON, no key: the demo tenant), before the
    management examples further down the README add a cost rule that reroutes simple prompts."""
    import json

    section = README.split("## GraphQL", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    commands = block.replace("http://localhost:4000", embedded.graphql_url).replace("\\\n", " ").strip()
    answers = [json.loads(_run_curl(command)) for command in commands.split("\n\n")]
    assert all("errors" not in answer for answer in answers), answers
    listing, instance, completion, agents = (answer["data"] for answer in answers)
    assert "document_review" in {w["id"] for w in listing["workflows"]}
    assert all(p["healthStatus"]["isHealthy"] in (True, False) for p in listing["llmProviders"])
    made = instance["createWorkflowInstance"]
    assert made["currentPlace"] == "draft"
    assert made["streamUrl"] == f"/api/workflow-instances/{made['id']}/events/stream"
    assert completion["createCompletion"]["content"].startswith("Simulated reply")
    assert completion["createCompletion"]["usage"]["totalTokens"] > 0
    assert {"researcher", "writer"} <= {a["name"] for a in agents["agents"]}
    assert {"placeId": "research", "autoTransition": "outline_ready", "agent": {"name": "researcher"}} in \
        agents["placeAgentConfigs"]


def test_management_api_examples(embedded):
    """Every `/api` curl outside the Workflows section, as written, with the demo key (and ids from answers)."""
    import json

    secret = re.search(r"demo API key \(shown once\): (cb-\S+)", embedded.output()).group(1)
    outside_workflows = README.split("## Workflows", 1)[0] + README.split("## What is where", 1)[1]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", outside_workflows, flags=re.S):
        joined = localize(block, embedded).replace("\\\n", " ")
        commands += [line for line in joined.splitlines() if line.startswith("curl ") and "/api/" in line]
    assert len(commands) >= 7, commands
    ids: dict[str, str] = {}
    for written in commands:
        command = written.replace("$CB_KEY", secret)
        for name, value in ids.items():
            command = command.replace(f"<{name}>", value)
        answer = json.loads(_run_curl(command))
        assert isinstance(answer, dict) and "detail" not in answer, (command, answer)
        assert ("id" in answer or "budgetId" in answer) if " -d " in command else answer, (command, answer)
        if "/api/providers/" in command and " -d " in command:  # not "-d": a random key may hold it
            ids["provider"] = str(answer["id"])
            assert answer["owner"] == "tenant"
    assert ids


def test_legacy_completions_are_listed_truthfully(embedded):
    import httpx

    assert "the built-in `simulated` provider does not serve it" in README
    response = httpx.post(f"{embedded.url}/v1/completions", json={"model": "simulated-echo", "prompt": "Hi"},
                          timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "model_not_supported"




def test_openrouter_migration_examples(embedded):
    """The "Moving from OpenRouter" commands as written, against the embedded default's database."""
    import json

    section = README.split("### Moving from OpenRouter", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "cbplatform.settings.local", "DATABASE_URL": "",
           "REDIS_URL": "", "CB_VAR_DIR": embedded.var_dir}
    analyze, plan = block.strip().splitlines()
    result = subprocess.run(analyze, shell=True, cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S602
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "10 rows, 10 requests" in result.stdout
    plan = plan.replace("var/", f"{embedded.var_dir}/")
    result = subprocess.run(plan, shell=True, cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S602
                            timeout=120)
    assert result.returncode == 0, result.stderr
    written = json.loads((Path(embedded.var_dir) / "openrouter-plan.json").read_text())
    assert written["tenant"] == "demo" and written["virtual_models"]
