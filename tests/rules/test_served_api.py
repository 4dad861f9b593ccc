"""The rules API on a real `manage.py serve` process, called over HTTP with a tenant's admin key."""

import httpx

from tests import factories
from tests.conftest import committed


def _admin_key(slug: str) -> str:
    return factories.api_key(factories.tenant(slug), scopes=["admin"])[1]


def test_rules_api_over_http(server_factory):
    secret, other_secret = committed(_admin_key, "rules-served"), committed(_admin_key, "rules-other")
    server = server_factory()
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        created = client.post("/api/rules/", json={"name": "big_spender", "condition": {
            "type": "FieldGreaterThan", "field": "spend_today", "value": "100"}})
        assert created.status_code == 201, created.text
        rule_id = created.json()["id"]
        dry_run = client.post("/api/rules/evaluate/", json={
            "condition": ["big_spender", {"FieldIn": {"field": "model", "values": ["gpt-4o"]}}],
            "metadata": {"spend_today": "150.25", "model": "gpt-4o"}})
        assert dry_run.status_code == 200 and dry_run.json()["passed"] is True
        bad = client.post("/api/rules/evaluate/", json={"condition": {"Expression": "data.x >"}})
        assert bad.status_code == 400 and bad.json()["condition"][0].startswith("$.Expression: CEL expression")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {other_secret}"}, timeout=10) as other:
        assert other.get(f"/api/rules/{rule_id}/").status_code == 404
        assert other.post("/api/rules/evaluate/", json={"rule": "big_spender"}).status_code == 400
