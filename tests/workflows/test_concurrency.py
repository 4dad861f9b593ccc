"""Conflicting fires on the same tokens through a real server (two uvicorn workers): exactly one wins, every
other client gets 409 transition_not_enabled, and the outbox holds exactly the winners' events."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from tests import factories
from tests.conftest import committed

from .nets import DOCUMENT_REVIEW


@pytest.fixture
def setup(server_factory):
    def make():
        from apps.workflows import services

        tenant = factories.tenant(f"wf-conc-{uuid.uuid4().hex[:6]}")
        _, secret = factories.api_key(tenant, scopes=["admin"])
        services.workflow_save(tenant, definition=DOCUMENT_REVIEW)
        return tenant, secret

    tenant, secret = committed(make)
    server = server_factory(workers=2)
    return server, tenant, {"Authorization": f"Bearer {secret}"}


def race(calls) -> list[httpx.Response]:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, method, url, body, headers):
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            results[index] = client.request(method, url, json=body, headers=headers)

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_conflicting_fires_one_wins_the_others_get_409(setup):
    from apps.workflows.models import Token, WorkflowEvent

    server, tenant, headers = setup
    instance = httpx.post(f"{server.url}/api/workflow-instances/", headers=headers, timeout=30,
                          json={"workflow_id": "document_review", "data": {"title": "t"}}).json()
    token_id = instance["tokens"][0]["id"]
    fire_url = f"{server.url}/api/tokens/{token_id}/fire/"
    # Eight clients submit the same token at once.
    responses = race([("POST", fire_url, {"transition_id": "submit"}, headers)] * 8)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 7, [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "transition_not_enabled"
            assert "no longer enabled" in r.json()["detail"]
    httpx.post(fire_url, headers=headers, json={"transition_id": "review"}, timeout=30).raise_for_status()
    # Approve and reject race for the same reviewed document, four clients each.
    calls = [("POST", fire_url, {"transition_id": "approve"}, headers),
             ("POST", fire_url, {"transition_id": "reject"}, headers)] * 4
    responses = race(calls)
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1 and sorted({r.status_code for r in responses}) == [200, 409]
    place = winners[0].json()["token"]["place"]
    assert place in ("approved", "rejected")
    assert Token.objects.get(pk=token_id).place == place
    fired = WorkflowEvent.objects.filter(instance_id=instance["id"], type="transition_fired")
    assert [e.data["transition"] for e in fired] == ["submit", "review", "approve" if place == "approved"
                                                     else "reject"]
