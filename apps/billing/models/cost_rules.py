from __future__ import annotations

from django.db import models

from apps.billing.cost_rules import validate_rule
from apps.core.models import TimeStampedModel
from apps.rules.selectors import named_rules_for


def _empty_object() -> dict:
    return {}


class CostRule(TimeStampedModel):
    """A cost-optimisation rule: when every condition holds, apply the action (see apps/billing/cost_rules.py).

    `tenant` empty: a global rule (staff's, applies to every tenant, read-only for tenants)."""

    class Action(models.TextChoices):
        ROUTE_TO_MODEL = "route_to_model", "route to model"
        PREFER_PROVIDER = "prefer_provider", "prefer provider"
        APPLY_RATE_LIMIT = "apply_rate_limit", "apply rate limit"

    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="cost_rules", help_text="Empty: a global rule for every tenant.")
    name = models.CharField(max_length=200)
    priority = models.IntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=True)
    conditions = models.JSONField(default=_empty_object, blank=True,
                                  help_text='All must hold, e.g. {"prompt_tokens_lt": 200, "task_type_in": '
                                            '["general"]}. Empty: always.')
    action = models.CharField(max_length=32, choices=Action.choices)
    params = models.JSONField(default=_empty_object, blank=True,
                              help_text='e.g. {"model": "gpt-4o-mini"}, {"providers": ["ollama"]}, '
                                        '{"requests_per_minute": 10}')
    stop_processing = models.BooleanField(default=False, help_text="When this rule matches, skip later rules.")

    class Meta:
        ordering = ["priority", "id"]
        indexes = [models.Index(fields=["tenant", "enabled"], name="costrule_tenant_enabled")]

    def __str__(self) -> str:
        return self.name or f"cost rule {self.pk}"

    def clean(self):
        super().clean()
        # A tenant's rule may name the tenant's rules-engine rules; a global one only the built-ins.
        named = named_rules_for(tenant=self.tenant) if self.tenant_id is not None else None
        validate_rule(self.conditions, self.action, self.params, named=named)
