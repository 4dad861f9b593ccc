"""Named-rule services, selectors and access against the real database, including concurrent writers."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections

from apps.core.errors import NotFound
from apps.rules import services
from apps.rules.access import rule_access_by_id
from apps.rules.engine import BUILTIN_RULES, compile_condition, evaluate
from apps.rules.models import Rule
from apps.rules.selectors import named_rules_for
from tests import factories


@pytest.mark.django_db
def test_named_rules_for_overlays_enabled_tenant_rules_on_builtins():
    tenant, other = factories.tenant(), factories.tenant()
    services.rule_create(tenant=tenant, name="status_approved", condition={"FieldEquals": {"field": "state",
                                                                                           "value": "ok"}})
    services.rule_create(tenant=tenant, name="off", condition=[], enabled=False)
    services.rule_create(tenant=other, name="theirs", condition=[])
    named = named_rules_for(tenant=tenant)
    assert set(named) == set(BUILTIN_RULES)  # "off" is disabled, "theirs" is another tenant's
    assert named["status_approved"] == {"FieldEquals": {"field": "state", "value": "ok"}}
    compiled = compile_condition("status_approved", named=named)
    assert evaluate(compiled, {"data": {"state": "ok"}}).passed is True
    assert evaluate(compiled, {"data": {"status": "approved"}}).passed is False


@pytest.mark.django_db
def test_service_validation_lists_every_problem():
    tenant = factories.tenant()
    with pytest.raises(ValidationError) as caught:
        services.rule_create(tenant=tenant, name="bad", condition=[{"type": "X"}, "nope"])
    assert caught.value.message_dict["condition"] == [
        "$[0].type: unknown condition kind 'X'; known kinds: " + ", ".join(__import__(
            "apps.rules.engine", fromlist=["KINDS"]).KINDS), "$[1]: unknown named rule 'nope'"]
    with pytest.raises(ValidationError) as caught:
        services.rule_create(tenant=tenant, name="self", condition={"Not": "self"})
    assert "cycle: self → self" in caught.value.message_dict["condition"][0]


@pytest.mark.django_db
def test_access_by_id_treats_foreign_and_missing_alike():
    tenant, other = factories.tenant(), factories.tenant()
    mine = services.rule_create(tenant=tenant, name="mine", condition=[])
    theirs = services.rule_create(tenant=other, name="theirs", condition=[])
    assert rule_access_by_id(tenant, mine.pk) == mine
    assert rule_access_by_id(tenant, str(mine.pk), for_write=True) == mine
    for pk in (theirs.pk, 10**12, "abc", None, -1):
        with pytest.raises(NotFound) as caught:
            rule_access_by_id(tenant, pk)
        assert caught.value.message == f"No rule with id {pk!r}."


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_cannot_leave_a_cycle_behind():
    """a → b and b → a each compile alone; saved at the same moment, one must see the other and fail."""
    tenant = factories.tenant()
    a = services.rule_create(tenant=tenant, name="a", condition={"FieldExists": "x"})
    b = services.rule_create(tenant=tenant, name="b", condition={"FieldExists": "y"})
    barrier, outcomes = threading.Barrier(2), []

    def edit(rule, condition):
        try:
            barrier.wait(10)
            services.rule_update(tenant=tenant, rule=rule, condition=condition)
            outcomes.append("saved")
        except ValidationError as exc:
            outcomes.append(exc.message_dict["condition"][0])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=edit, args=(a, ["b"])), threading.Thread(target=edit, args=(b, ["a"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes)[1] == "saved" and "cycle" in sorted(outcomes)[0], outcomes
    named = named_rules_for(tenant=tenant)
    for rule in Rule.objects.filter(tenant=tenant):
        compile_condition(rule.condition, named=named, as_rule=rule.name)  # everything stored still compiles


@pytest.mark.django_db
def test_admin_compiles_before_saving(client):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("rules-admin", password="pw")
    client.force_login(staff)
    tenant = factories.tenant()
    form = {"tenant": tenant.pk, "name": "r", "description": "", "enabled": "on"}
    response = client.post("/admin/rules/rule/add/", {**form, "condition": '{"FieldEquals": {"field": ""}}'})
    assert response.status_code == 200 and not Rule.objects.exists()
    assert "FieldEquals needs [&#x27;value&#x27;]" in response.content.decode()
    response = client.post("/admin/rules/rule/add/", {**form, "condition": '["has_content"]'})
    assert response.status_code == 302 and Rule.objects.get().condition == ["has_content"]
    assert client.get("/admin/rules/rule/").status_code == 200
