"""Writes of named rules. Keyword-only, tenant first. Every write compiles the rule, and every other enabled
rule of the tenant, against the names as they will be, so no save leaves a rule that does not compile (an
unknown name, a cycle) behind."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.core.errors import Conflict
from apps.tenants.models import Tenant

from .engine import BUILTIN_RULES, RuleError, compile_condition
from .models import Rule
from .selectors import named_rules_for

_FIELDS = ("name", "description", "condition", "enabled")


@transaction.atomic
def rule_create(*, tenant, name: str, condition, description: str = "", enabled: bool = True) -> Rule:
    _serialise_writes(tenant)
    rule = Rule(tenant=tenant, name=name, condition=[] if condition is None else condition,
                description=description, enabled=enabled)
    rule.full_clean(exclude=["condition"], validate_unique=False, validate_constraints=False)
    rule_check(tenant=tenant, rule=rule)
    return _save(rule)


@transaction.atomic
def rule_update(*, tenant, rule: Rule, **fields) -> Rule:
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise TypeError(f"unknown rule fields: {sorted(unknown)}")
    _serialise_writes(tenant)
    rule = Rule.objects.select_for_update().get(pk=rule.pk, tenant=tenant)  # concurrent edits apply one by one
    old_name, old_enabled = rule.name, rule.enabled
    for name, value in fields.items():
        setattr(rule, name, [] if name == "condition" and value is None else value)
    rule.full_clean(exclude=["condition", "tenant"], validate_unique=False, validate_constraints=False)
    rule_check(tenant=tenant, rule=rule, old_name=old_name, old_enabled=old_enabled)
    return _save(rule)


@transaction.atomic
def rule_delete(*, tenant, rule: Rule) -> None:
    _serialise_writes(tenant)
    rule = Rule.objects.select_for_update().get(pk=rule.pk, tenant=tenant)
    named = named_rules_for(tenant=tenant)
    named.pop(rule.name, None)
    _restore_builtin(named, rule.name)
    _dependents_still_compile(tenant=tenant, named=named, changed=rule.name, skip=rule.pk)
    rule.delete()


def rule_check(*, tenant, rule: Rule, old_name: str | None = None, old_enabled: bool = False) -> None:
    """Compile `rule` (unsaved changes included) as it will be; then the tenant's other enabled rules, when its
    old name stops meaning it (renamed, disabled) or it is new (it may shadow a built-in). Raises
    ValidationError on `condition` listing every problem, or Conflict naming the rules it would break."""
    named = named_rules_for(tenant=tenant)
    vanished = old_name is not None and old_enabled and (rule.name != old_name or not rule.enabled)
    if vanished:  # the old name no longer means this rule
        named.pop(old_name, None)
        _restore_builtin(named, old_name)
    if rule.enabled:
        named[rule.name] = rule.condition
    try:
        compile_condition(rule.condition, named=named, as_rule=rule.name)
    except RuleError as exc:
        raise ValidationError({"condition": exc.problems}) from None
    if vanished or rule.pk is None:
        _dependents_still_compile(tenant=tenant, named=named, changed=old_name if vanished else rule.name,
                                  skip=rule.pk)


def _dependents_still_compile(*, tenant, named: dict, changed: str, skip) -> None:
    broken = []
    for other in Rule.objects.filter(tenant=tenant, enabled=True).exclude(pk=skip):
        try:
            compile_condition(other.condition, named=named, as_rule=other.name)
        except RuleError:
            broken.append(other.name)
    if broken:
        raise Conflict(f"Rules {', '.join(sorted(broken))} reference {changed!r} and would no longer compile; "
                       "change them first.", code="rule_in_use")


def _serialise_writes(tenant) -> None:
    """One rule write per tenant at a time: two concurrent saves that each compile alone (a → b, b → a) must not
    together leave a cycle behind, so each sees the other's result."""
    Tenant.objects.select_for_update().filter(pk=tenant.pk).exists()


def _restore_builtin(named: dict, name: str) -> None:
    """Without the tenant's rule of that name, a built-in of the same name shows through again."""
    if name in BUILTIN_RULES:
        named[name] = BUILTIN_RULES[name]


def _save(rule: Rule) -> Rule:
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError:
        # A taken name is the client's input error on `name` (the API's uniqueness rule: a 400 naming the field).
        raise ValidationError({"name": ValidationError(f"The tenant already has a rule named {rule.name!r}.",
                                                       code="unique")}) from None
    return rule
