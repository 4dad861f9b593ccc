from __future__ import annotations

from django.db import models


class RequestLog(models.Model):
    """The prompt and response bodies of one request whose tenant or key opted in, next to its usage record (1:1
    by request id). Written by the ingester (redacted, truncated to REQUEST_LOG_MAX_BYTES per body), deleted by
    `billing.purge_request_logs` once `expires_at` passes (the tenant's retention at ingestion)."""

    usage = models.OneToOneField("billing.UsageRecord", to_field="request_id", db_column="request_id",
                                 primary_key=True, on_delete=models.CASCADE, related_name="request_log")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="request_logs")
    created_at = models.DateTimeField(help_text="When the request arrived.")
    expires_at = models.DateTimeField(db_index=True)
    request_body = models.TextField(help_text="The request as JSON (text when truncated).")
    response_body = models.TextField(blank=True, help_text="The answer as JSON (text when truncated).")
    truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "created_at"], name="request_log_tenant_time")]

    def __str__(self):
        return f"request log {self.usage_id}"
