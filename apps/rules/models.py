"""A tenant's named rules: conditions of the rules engine that other conditions reference by name."""

from __future__ import annotations

from django.db import models

from apps.core.models import TimeStampedModel


class Rule(TimeStampedModel):
    """`condition` is raw JSON in either tagged shape (see apps/rules/engine); services compile it before every
    save, so a stored rule always compiled against the tenant's named rules of that moment. A rule named like a
    built-in shadows it for this tenant."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="rules")
    name = models.SlugField(max_length=100, help_text="How conditions reference the rule (letters, digits, _ and -).")
    description = models.TextField(blank=True, max_length=2000)
    condition = models.JSONField(help_text="A rules-engine condition, e.g. "
                                           '{"type": "FieldEquals", "field": "status", "value": "approved"}.')
    enabled = models.BooleanField(default=True, help_text="Disabled rules are not visible to conditions.")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="rule_tenant_name_unique")]

    def __str__(self):
        return f"{self.tenant_id}:{self.name}"
