from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.billing import selectors
from apps.billing.models import Budget
from apps.billing.models.budgets import (
    MAX_ALERT_THRESHOLD,
    MAX_ALERT_THRESHOLDS,
    MAX_LIMIT,
    normalise_thresholds,
)
from apps.core.api import StrictModelSerializer, StrictSerializer
from apps.core.http import validate_upstream_url
from apps.tenants.models import ApiKey

ZERO = Decimal(0)

# Model field → API field, for errors raised by the model's validation.
API_NAMES = {"api_key": "apiKeyId", "user_label": "userId", "project_label": "projectId",
             "alert_thresholds": "alertThresholds", "downgrade_threshold": "downgradeThreshold",
             "webhook_url": "webhookUrl", "webhook_secret": "webhookSecret"}


@extend_schema_field({"type": "array", "maxItems": MAX_ALERT_THRESHOLDS,
                     "items": {"type": "number", "minimum": 0.01, "maximum": MAX_ALERT_THRESHOLD}})
class AlertThresholdsField(serializers.JSONField):
    """Percents of the limit, up to MAX_ALERT_THRESHOLD (a notify budget may overrun: 150 is meaningful); the
    schema states the model's bounds, `normalise_thresholds` enforces them (and at most two decimals)."""


class BudgetAlertStateSerializer(StrictSerializer):
    threshold = serializers.FloatField(help_text="Percent of the limit.")
    triggered = serializers.BooleanField()
    triggeredAt = serializers.DateTimeField(allow_null=True)  # noqa: N815 - the API speaks camelCase
    spent = serializers.FloatField(allow_null=True, help_text="USD spent when it fired.")
    webhookStatus = serializers.CharField(allow_null=True)  # noqa: N815
    message = serializers.CharField()


class BudgetSerializer(StrictModelSerializer):
    """The seed's setBudget fields (userId, projectId, limit, period, alertThresholds) plus ours, in camelCase."""

    budgetId = serializers.IntegerField(source="id", read_only=True)  # noqa: N815
    apiKeyId = serializers.PrimaryKeyRelatedField(source="api_key", queryset=ApiKey.objects.none(),  # noqa: N815
                                                  required=False, allow_null=True)
    userId = serializers.CharField(source="user_label", required=False, allow_blank=True, allow_null=True,  # noqa: N815
                                   max_length=200)
    projectId = serializers.CharField(source="project_label", required=False, allow_blank=True,  # noqa: N815
                                      allow_null=True, max_length=200)
    model = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=200)
    limit = serializers.DecimalField(max_digits=16, decimal_places=6, min_value=ZERO, max_value=MAX_LIMIT,
                                     coerce_to_string=False, help_text="USD per period.")
    downgradeThreshold = serializers.DecimalField(  # noqa: N815
        source="downgrade_threshold", max_digits=5, decimal_places=2, min_value=Decimal("0.01"),
        max_value=Decimal(100), coerce_to_string=False, required=False)
    alertThresholds = AlertThresholdsField(source="alert_thresholds", required=False,  # noqa: N815
                                           help_text="Percents of the limit, e.g. [50, 80, 95]; above 100 "
                                                     "for a budget that may overrun (notify).")
    webhookUrl = serializers.CharField(source="webhook_url", required=False, allow_blank=True,  # noqa: N815
                                       allow_null=True, max_length=500)
    webhookSecret = serializers.CharField(write_only=True, required=False, allow_blank=True,  # noqa: N815
                                          trim_whitespace=False, max_length=1024,
                                          style={"input_type": "password"},
                                          help_text="Write-only; signs webhooks (HMAC-SHA256), stored encrypted.")
    webhookSecretHint = serializers.CharField(source="webhook_secret_hint", read_only=True)  # noqa: N815
    used = serializers.SerializerMethodField()
    remaining = serializers.SerializerMethodField()
    isExhausted = serializers.SerializerMethodField()  # noqa: N815
    periodStart = serializers.SerializerMethodField()  # noqa: N815
    periodEnd = serializers.SerializerMethodField()  # noqa: N815
    alerts = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)  # noqa: N815
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)  # noqa: N815

    class Meta:
        model = Budget
        fields = ["budgetId", "name", "scope", "apiKeyId", "userId", "projectId", "model", "limit", "period",
                  "action", "downgradeThreshold", "alertThresholds", "webhookUrl", "webhookSecret",
                  "webhookSecretHint", "enabled", "used", "remaining", "isExhausted", "periodStart", "periodEnd",
                  "alerts", "createdAt", "updatedAt"]
        read_only_fields = ["scope"]

    def __init__(self, *args, api_key_queryset=None, **kwargs):
        super().__init__(*args, **kwargs)
        if api_key_queryset is not None:
            self.fields["apiKeyId"].queryset = api_key_queryset
        self._usage: dict[int, dict] = {}

    # ---- input -----------------------------------------------------------------------------------------
    def validate_alertThresholds(self, value):  # noqa: N802
        try:
            return normalise_thresholds(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def validate_webhookUrl(self, value):  # noqa: N802
        if value:
            try:
                validate_upstream_url(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages) from None
        return value

    # ---- output ----------------------------------------------------------------------------------------
    def _state(self, obj: Budget) -> dict:
        """The current period's figures, from the ledger; once per budget and response."""
        if obj.pk not in self._usage:
            self._usage.update(selectors.budget_states([obj], datetime.now(UTC)))
        return self._usage[obj.pk]

    def get_used(self, obj) -> float:
        return float(self._state(obj)["used"])

    def get_remaining(self, obj) -> float:
        return float(self._state(obj)["remaining"])

    def get_isExhausted(self, obj) -> bool:  # noqa: N802
        return self._state(obj)["is_exhausted"]

    def get_periodStart(self, obj) -> datetime:  # noqa: N802
        return self._state(obj)["period_start"]

    def get_periodEnd(self, obj) -> datetime | None:  # noqa: N802
        return self._state(obj)["period_end"]

    def get_alerts(self, obj) -> list[dict]:
        out = [{"threshold": a["threshold"], "triggered": a["triggered"], "triggeredAt": a["triggered_at"],
                "spent": a["spent"], "webhookStatus": a["webhook_status"], "message": a["message"]}
               for a in self._state(obj)["alerts"]]
        return BudgetAlertStateSerializer(out, many=True).data
