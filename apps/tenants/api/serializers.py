from rest_framework import serializers

from apps.core.api import StrictModelSerializer
from apps.tenants.models import ApiKey, Tenant


class TenantSerializer(StrictModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "slug", "name", "is_active", "default_routing_strategy", "rate_limit_rpm", "rate_limit_tpm",
                  "max_concurrent", "request_logging", "request_log_retention_days", "request_log_redact",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ApiKeySerializer(StrictModelSerializer):
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKey.Scope.values), required=False)
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "hint", "scopes", "user_label", "project_label", "expires_at", "rate_limit_rpm",
                  "rate_limit_tpm", "max_concurrent", "request_logging", "revoked_at", "last_used_at", "created_at",
                  "status"]
        read_only_fields = ["id", "hint", "revoked_at", "last_used_at", "created_at", "status"]

    def get_status(self, obj) -> str:
        return "revoked" if obj.is_revoked else "expired" if obj.is_expired else "active"


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret, returned only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
