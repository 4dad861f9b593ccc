"""The admin: functions validated like the API (a refused callable is a form error, the secret is write-only
and stored encrypted), triggers and chains, executions read-only with a cancel action."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.functions import services
from apps.functions.launch import execution_create
from apps.functions.models import Function, FunctionExecution, FunctionTrigger
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(get_user_model().objects.create_superuser("fn-admin", "a@example.com", "pw"))
    return client


def form(tenant, **fields):
    return {"tenant": tenant.id, "name": "hook", "description": "", "runtime": "http",
            "config": '{"url": "https://example.com/hook"}', "input_schema": "{}", "output_schema": "{}",
            "timeout_seconds": "30", "max_attempts": "1", "backoff": "exponential", "retry_delay_seconds": "1",
            "retry_max_delay_seconds": "300", "retry_on": '["timeout"]', "tags": "[]", "enabled": "on",
            "new_secret": "", **fields}


def test_function_forms_validate_and_keep_the_secret_write_only(staff):
    tenant = factories.tenant("fn-admin")
    refused = staff.post("/admin/functions/function/add/", form(tenant, runtime="python",
                                                                 config='{"callable": "os.system"}'))
    assert refused.status_code == 200 and "FUNCTIONS_PYTHON_MODULES" in refused.content.decode()
    assert not Function.objects.exists()
    created = staff.post("/admin/functions/function/add/", form(tenant, new_secret="admin-set-secret-123456"))
    assert created.status_code == 302, created.content.decode()[:3000]
    function = Function.objects.get()
    assert function.secret() == "admin-set-secret-123456" and "admin-set-secret" not in function.secret_encrypted
    page = staff.get(f"/admin/functions/function/{function.id}/change/").content.decode()
    assert "admin-set-secret" not in page and function.secret_encrypted not in page
    changed = staff.post(f"/admin/functions/function/{function.id}/change/", form(tenant, description="changed"))
    assert changed.status_code == 302
    function.refresh_from_db()
    assert function.version == 2 and function.secret() == "admin-set-secret-123456"  # blank keeps it

    trigger = staff.post("/admin/functions/functiontrigger/add/", {
        "tenant": tenant.id, "function": function.id, "kind": "schedule", "workflow": "",
        "config": '{"cron": "*/5 * * * *"}', "condition": "null", "input_mapping": "{}", "enabled": "on"})
    assert trigger.status_code == 302, trigger.content.decode()[:3000]
    assert FunctionTrigger.objects.get().next_run_at is not None
    bad = staff.post("/admin/functions/functiontrigger/add/", {
        "tenant": tenant.id, "function": function.id, "kind": "schedule", "workflow": "",
        "config": '{"cron": "often"}', "condition": "null", "input_mapping": "{}", "enabled": "on"})
    assert bad.status_code == 200 and "cron must be a cron expression" in bad.content.decode()
    for page in ("function", "functiontrigger", "functionchain", "functionexecution"):
        assert staff.get(f"/admin/functions/{page}/").status_code == 200


def test_executions_are_read_only_and_can_be_cancelled(staff):
    tenant = factories.tenant("fn-admin-runs")
    function, _ = services.function_create(tenant, fields={
        "name": "echo", "runtime": "python", "config": {"callable": "apps.functions.builtins.echo"}})
    row = execution_create(function, input={"a": 1}, trigger="manual")
    page = staff.get(f"/admin/functions/functionexecution/{row.id}/change/")
    assert page.status_code == 200 and "Save" not in page.content.decode()
    assert staff.get("/admin/functions/functionexecution/add/").status_code == 403
    done = staff.post("/admin/functions/functionexecution/", {"action": "cancel", "_selected_action": [row.id]})
    assert done.status_code == 302
    assert FunctionExecution.objects.get(pk=row.id).status == "cancelled"
