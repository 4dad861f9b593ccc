from __future__ import annotations

from django.db import models


class UsageRecord(models.Model):
    """One /v1 request, success or failure. Append-only: written once by the ingester, never updated."""

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True, help_text="When the request arrived.")
    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="usage_records", db_index=False)
    api_key = models.ForeignKey("tenants.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="usage_records")
    user_label = models.CharField(max_length=200, blank=True)
    project_label = models.CharField(max_length=200, blank=True)
    workflow_id = models.CharField(max_length=64, blank=True)
    agent_id = models.CharField(max_length=64, blank=True)
    endpoint = models.CharField(max_length=32)
    provider = models.CharField(max_length=64, blank=True, help_text="Provider slug that served (or failed last).")
    deployment = models.CharField(max_length=128, blank=True)
    model_requested = models.CharField(max_length=256, blank=True)
    model_served = models.CharField(max_length=256, blank=True)
    strategy = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=10, default=0, help_text="USD.")
    latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    status = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    usage_estimated = models.BooleanField(default=False, help_text="Tokens counted by us, not reported upstream.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="usage_tenant_time"),
            models.Index(fields=["tenant", "model_served", "created_at"], name="usage_tenant_model_time"),
            models.Index(fields=["api_key", "created_at"], name="usage_key_time"),
            # Latency percentiles over a range read only these columns: an index-only scan (PostgreSQL).
            models.Index(fields=["tenant", "created_at"], include=["latency_ms", "status"],
                         name="usage_tenant_time_latency"),
        ]

    def __str__(self):
        return f"{self.request_id} {self.model_served or self.model_requested} {self.status}"
