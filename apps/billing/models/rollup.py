from __future__ import annotations

from django.db import models


class UsageDaily(models.Model):
    """The usage ledger summed per UTC day and dimension set; rebuilt by `billing.rollup_usage`, never edited.

    Analytics read whole past days from here and the rest (today, days not rolled up since they ended) from
    the ledger. `api_key_id` is a plain id, not a foreign key: a deleted key keeps its history, as in the ledger.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="usage_daily",
                               db_index=False)
    day = models.DateField()
    provider = models.CharField(max_length=64, blank=True)
    model_served = models.CharField(max_length=256, blank=True)
    api_key_id = models.BigIntegerField(null=True, blank=True)
    user_label = models.CharField(max_length=200, blank=True)
    project_label = models.CharField(max_length=200, blank=True)
    workflow_id = models.CharField(max_length=64, blank=True)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0, help_text="Requests answered with HTTP status >= 400.")
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=24, decimal_places=10, default=0, help_text="USD.")
    latency_ms_sum = models.FloatField(default=0)

    class Meta:
        indexes = [models.Index(fields=["tenant", "day"], name="usagedaily_tenant_day")]

    def __str__(self):
        return f"{self.tenant_id} {self.day} {self.model_served} {self.requests}"


class UsageRollupDay(models.Model):
    """When a day was last rolled up. A day is read from the roll-up only once it was rolled after it ended
    (plus the ingestion grace), so a missed or late roll-up falls back to the ledger instead of under-counting."""

    day = models.DateField(primary_key=True)
    rolled_at = models.DateTimeField()
    rows = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.day} rolled at {self.rolled_at:%Y-%m-%d %H:%M:%S}"
