"""Listeners registered with `apps.workflows.outbox` hear every event once its transaction commits — on the
one-statement firing path and the ORM path — and never when it rolls back; a failing listener breaks nothing."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.workflows import outbox, services
from apps.workflows.models import Token

from .nets import DOCUMENT_REVIEW

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["sql", "orm"])
def heard(request, monkeypatch):
    from apps.workflows import firing

    monkeypatch.setattr(firing, "SQL_FAST_PATH", request.param == "sql")
    batches: list[list[tuple]] = []

    def listener(events):
        batches.append([(e.type, e.token_id and str(e.token_id), dict(e.data)) for e in events])

    def broken(events):
        raise RuntimeError("a listener's bug")

    outbox.register_listener(broken)
    outbox.register_listener(listener)
    yield batches
    outbox.unregister_listener(listener)
    outbox.unregister_listener(broken)


def test_listeners_hear_each_change_after_commit(tenant, saved, heard):
    saved(DOCUMENT_REVIEW)
    heard.clear()
    instance = services.instance_create(tenant, workflow_id="document_review", data={"title": "T"}, actor="a")
    token = Token.objects.get(instance=instance)
    assert [t for t, _, _ in heard[-1]] == ["instance_created", "token_created"]
    assert heard[-1][1][2]["place"] == "draft"
    services.transition_fire(tenant, token_id=token.id, transition_id="submit", actor="a")
    ((kind, token_id, data),) = heard[-1]
    assert (kind, token_id, data["to_places"]) == ("transition_fired", str(token.id), ["pending_review"])
    services.token_update_data(tenant, token_id=token.id, data={"x": 1})
    assert heard[-1][0][0] == "token_updated"
    outbox.event_record(tenant.pk, workflow="document_review", type="agent_completed", instance_id=instance.id,
                        token_id=token.id, data={"output": "ok"})
    assert heard[-1] == [("agent_completed", str(token.id), {"output": "ok"})]


def test_nothing_is_heard_from_a_rolled_back_change(tenant, saved, heard):
    saved(DOCUMENT_REVIEW)
    heard.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.instance_create(tenant, workflow_id="document_review", data={}, actor="a")
        raise RuntimeError("roll back")
    assert heard == []
