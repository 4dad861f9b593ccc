"""The management API's schema is the truth: schemathesis (its default checks: no server error, documented
status codes, content types and response bodies, schema-violating requests rejected, schema-valid ones
accepted) over every operation of `/api/schema/`, against `manage.py serve`, as an admin of a tenant with data."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import admin_api, api_key

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Fuzzing these would revoke or re-scope the very key the run authenticates with.
EXCLUDED_PATHS = r"^/api/keys/\{"


def _tenant_with_data():
    tenant, client = admin_api("fuzzed")
    for path, body in [
        ("/api/providers/", {"slug": "mine", "name": "Mine", "type": "openai"}),
        ("/api/virtual-models/", {"name": "cheap", "candidates": ["gpt-4o-mini"], "strategy": "cost_optimized"}),
        ("/api/budgets/", {"userId": "alice", "limit": 25, "period": "monthly"}),
        ("/api/cost-rules/", {"name": "simple", "conditions": {"simple_prompt": True}, "action": "route_to_model",
                              "params": {"model": "gpt-4o-mini"}}),
        ("/api/rules/", {"name": "always", "condition": []}),
        ("/api/functions/", {"name": "echo", "runtime": "python",
                             "config": {"callable": "apps.functions.builtins.echo"}}),
    ]:
        response = client.post(path, body, format="json")
        assert response.status_code == 201, (path, response.content)
    _, secret = api_key(tenant, scopes=["admin"], name="fuzzer")
    return secret


@pytest.mark.slow
def test_schemathesis_finds_nothing(server_factory, tmp_path):
    secret = _tenant_with_data()
    # No worker runs here: executions with `wait` would wait longer than schemathesis' 10 s read timeout.
    server = server_factory(env={"FUNCTIONS_EXECUTE_WAIT_SECONDS": "2", "AGENTS_EXECUTE_WAIT_SECONDS": "2"})
    result = subprocess.run(
        [str(SCHEMATHESIS), "--no-color", "--config-file", str(CONFIG), "run", f"{server.url}/api/schema/",
         "-H", f"Authorization: Bearer {secret}",
         # Coverage (each operation's boundary and type-violating values, enumerated: ~4,000 cases) then
         # fuzzing, 5 examples per operation, from a fixed seed and without an example database, so a run
         # generates what the last one did.
         "--max-examples", "5", "--workers", "1", "--phases", "examples,coverage,fuzzing",
         "--exclude-path-regex", EXCLUDED_PATHS, "--seed", "1", "--generation-database", "none"],
        # ~3 minutes on a quiet 2-core machine, over 4 when the machine is shared: a hang, not a slow day, fails.
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    summary = result.stdout[result.stdout.find("SUMMARY"):]
    tested = int(re.search(r"Tested: (\d+)", summary).group(1))
    assert tested >= 80, summary
    assert int(re.search(r"(\d+) generated", summary).group(1)) >= 4000, summary
    assert result.returncode == 0, result.stdout[-20000:]
    assert "Traceback" not in server.output()
