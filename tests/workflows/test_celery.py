"""Automatic and delayed transitions through a real Celery worker (with beat): they fire by themselves, once;
a duplicated or retried task fires nothing; the beat sweep fires a delayed transition whose task was lost."""

from __future__ import annotations

import time
import uuid

import pytest

from tests import factories
from tests.celery_worker import wait_until
from tests.conftest import committed

pytestmark = pytest.mark.django_db(transaction=True)

AUTO = {"id": "auto_chain", "places": ["a", "b", "c", "d"], "initial_place": "a",
        "transitions": [{"id": "ab", "from_places": ["a"], "to_place": "b", "automatic": True},
                        {"id": "bc", "from_places": ["b"], "to_place": "c", "automatic": True,
                         "conditions": [{"FieldEquals": {"field": "data.go", "value": True}}]},
                        {"id": "cd", "from_places": ["c"], "to_place": "d", "automatic": True}]}
DELAYED = {"id": "delayed", "places": ["waiting", "escalated", "handled"], "initial_place": "waiting",
           "final_places": ["escalated", "handled"],
           "transitions": [{"id": "escalate", "from_places": ["waiting"], "to_place": "escalated", "delay": "2s"},
                           {"id": "handle", "from_places": ["waiting"], "to_place": "handled"}]}


def setup_tenant(*definitions):
    from apps.workflows import services

    tenant = factories.tenant(f"wf-celery-{uuid.uuid4().hex[:6]}")
    for raw in definitions:
        services.workflow_save(tenant, definition=raw)
    return tenant


def fired(instance_id) -> list[str]:
    from apps.workflows.models import WorkflowEvent

    return list(WorkflowEvent.objects.filter(instance_id=instance_id, type="transition_fired")
                .values_list("data__transition", flat=True))


def test_automatic_transitions_fire_by_themselves_once_guards_hold(worker):
    from apps.workflows import services
    from apps.workflows.models import Token, WorkflowInstance

    worker()
    tenant = committed(setup_tenant, AUTO)
    instance = committed(services.instance_create, tenant, workflow_id="auto_chain", data={"go": False})
    assert wait_until(lambda: fired(instance.id) == ["ab"])
    time.sleep(1.0)
    assert fired(instance.id) == ["ab"]  # bc's guard does not hold: it waits
    token = Token.objects.get(instance_id=instance.id)
    committed(services.token_update_data, tenant, token_id=token.id, data={"go": True})
    assert wait_until(lambda: WorkflowInstance.objects.get(pk=instance.id).status == "completed")
    assert fired(instance.id) == ["ab", "bc", "cd"]


def test_a_retried_or_duplicated_task_fires_nothing(worker):
    from apps.workflows import firing, services
    from apps.workflows.models import WorkflowInstance
    from apps.workflows.tasks import fire_automatic, fire_delayed

    tenant = committed(setup_tenant, AUTO, DELAYED)
    instance = committed(services.instance_create, tenant, workflow_id="auto_chain", data={"go": True})
    # No worker yet: the task waits in the broker. Send the same task twice more, as a retry would.
    fire_automatic.delay(str(instance.id), 0)
    fire_automatic.delay(str(instance.id), 0)
    worker()
    assert wait_until(lambda: WorkflowInstance.objects.get(pk=instance.id).status == "completed")
    time.sleep(1.0)
    assert fired(instance.id) == ["ab", "bc", "cd"]
    assert committed(firing.fire_automatic, str(instance.id), 0) is False
    delayed = committed(services.instance_create, tenant, workflow_id="delayed")
    since = WorkflowInstance.objects.get(pk=delayed.id).enabled_since["escalate"]
    assert wait_until(lambda: fired(delayed.id) == ["escalate"], timeout=20)
    fire_delayed.delay(str(delayed.id), "escalate", since)  # a duplicate of the countdown task
    time.sleep(1.5)
    assert fired(delayed.id) == ["escalate"]


def test_a_delayed_transition_fires_after_its_delay_unless_something_else_fired(worker):
    from apps.workflows import services
    from apps.workflows.models import WorkflowInstance

    worker()
    tenant = committed(setup_tenant, DELAYED)
    started = time.monotonic()
    escalated = committed(services.instance_create, tenant, workflow_id="delayed")
    handled = committed(services.instance_create, tenant, workflow_id="delayed")
    committed(services.transition_fire, tenant, instance_id=handled.id, transition_id="handle")
    time.sleep(1.0)
    assert fired(escalated.id) == []  # not before its delay
    assert wait_until(lambda: fired(escalated.id) == ["escalate"], timeout=20)
    assert time.monotonic() - started >= 2.0
    instance = WorkflowInstance.objects.get(pk=escalated.id)
    assert instance.status == "completed" and instance.marking == {"escalated": 1} and instance.next_due_at is None
    time.sleep(1.0)
    assert fired(handled.id) == ["handle"]  # its countdown task found the transition disabled


def test_the_beat_sweep_fires_a_delayed_transition_whose_task_was_lost(worker, redis_client):
    from apps.workflows import services

    tenant = committed(setup_tenant, DELAYED)
    instance = committed(services.instance_create, tenant, workflow_id="delayed")
    redis_client.flushdb()  # the countdown task is lost
    time.sleep(2.0)
    worker(WORKFLOW_DUE_SWEEP_SECONDS="1")
    assert wait_until(lambda: fired(instance.id) == ["escalate"], timeout=30)
