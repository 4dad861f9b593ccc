"""Outside any transaction, a firing on Postgres is two round trips: `BEGIN; lock; read` and `write; COMMIT`.
A refused firing rolls back and leaves the connection clean. (That automatic transitions are enqueued only after
the commit is shown by tests/workflows/test_celery.py: a task run earlier would find the old fire count and do
nothing.)"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.workflows import services
from apps.workflows.engine import TransitionNotEnabled
from apps.workflows.models import Token, WorkflowEvent
from tests import factories

from .nets import DOCUMENT_REVIEW

pytestmark = pytest.mark.django_db(transaction=True)

def test_two_round_trips_and_a_clean_rollback():
    tenant = factories.tenant("wf-lean")
    services.workflow_save(tenant, definition=DOCUMENT_REVIEW)
    instance = services.instance_create(tenant, workflow_id="document_review")
    token = Token.objects.get(instance=instance)
    assert connection.get_autocommit() and not connection.in_atomic_block
    with CaptureQueriesContext(connection) as queries:
        services.transition_fire(tenant, token_id=token.id, transition_id="submit")
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == 2 and sql[0].startswith("BEGIN; SELECT") and sql[1].endswith("; COMMIT"), sql
    token.refresh_from_db()
    assert token.place == "pending_review"
    with CaptureQueriesContext(connection) as queries, pytest.raises(TransitionNotEnabled):
        services.transition_fire(tenant, token_id=token.id, transition_id="approve")
    assert [q["sql"] for q in queries.captured_queries][-1] == "ROLLBACK"
    assert connection.connection.info.transaction_status == 0  # idle: no transaction left open
    # The lock was released: another firing goes through at once.
    services.transition_fire(tenant, token_id=token.id, transition_id="review")
    assert WorkflowEvent.objects.filter(instance_id=instance.id, type="transition_fired").count() == 2


def test_without_a_broker_a_delayed_transition_fires_from_a_timer_in_the_process():
    """The embedded default runs Celery eagerly and has no beat: a timer holds the countdown."""
    import time

    from celery import current_app

    from apps.workflows.models import WorkflowInstance

    tenant = factories.tenant("wf-lean-timer")
    services.workflow_save(tenant, definition={
        "id": "timed", "places": ["waiting", "escalated"], "initial_place": "waiting",
        "transitions": [{"id": "escalate", "from_places": ["waiting"], "to_place": "escalated", "delay": "1s"}]})
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    try:
        instance = services.instance_create(tenant, workflow_id="timed")
        assert WorkflowInstance.objects.get(pk=instance.pk).status == "running"
        deadline = time.monotonic() + 10
        while WorkflowInstance.objects.get(pk=instance.pk).status != "completed" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        current_app.conf.task_always_eager = eager
    assert WorkflowInstance.objects.get(pk=instance.pk).marking == {"escalated": 1}
