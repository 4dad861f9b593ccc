from rest_framework import serializers

from apps.core.api import StrictModelSerializer
from apps.providers.models import ModelEntry, ModelRoute, Provider, ProviderCredential, VirtualModel


class ProviderSerializer(StrictModelSerializer):
    owner = serializers.SerializerMethodField()
    key_hints = serializers.SerializerMethodField()
    effective_base_url = serializers.CharField(read_only=True)

    class Meta:
        model = Provider
        fields = ["id", "slug", "name", "type", "base_url", "effective_base_url", "enabled", "priority",
                  "collects_data", "options", "source", "owner", "key_hints", "created_at", "updated_at"]
        read_only_fields = ["id", "source", "owner", "key_hints", "created_at", "updated_at"]
        # Uniqueness per tenant is checked by the service's full_clean, which knows the tenant.
        validators = []

    def get_owner(self, obj) -> str:
        return "global" if obj.tenant_id is None else "tenant"

    def get_key_hints(self, obj) -> list[str]:
        return [c.hint for c in obj.credentials.all() if c.enabled]


class CredentialSerializer(StrictModelSerializer):
    api_key = serializers.CharField(write_only=True, required=True, trim_whitespace=True, max_length=4096,
                                    style={"input_type": "password"},
                                    help_text="Write-only; stored encrypted and never returned.")
    provider = serializers.PrimaryKeyRelatedField(queryset=Provider.objects.none())

    class Meta:
        model = ProviderCredential
        fields = ["id", "provider", "name", "api_key", "hint", "enabled", "source", "created_at", "rotated_at",
                  "last_used_at"]
        read_only_fields = ["id", "hint", "source", "created_at", "rotated_at", "last_used_at"]

    def __init__(self, *args, provider_queryset=None, **kwargs):
        super().__init__(*args, **kwargs)
        if provider_queryset is not None:
            self.fields["provider"].queryset = provider_queryset
        if self.instance is not None:
            self.fields["api_key"].required = False
            self.fields["provider"].read_only = True


class ModelEntrySerializer(StrictModelSerializer):
    capabilities = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ModelEntry
        fields = ["id", "model_id", "provider_type", "provider", "upstream_name", "aliases", "mode",
                  "context_window", "max_output_tokens", "input_price", "output_price", "cached_input_price",
                  "cache_write_price", "supports_streaming", "supports_tools", "supports_vision",
                  "supports_json_mode", "supports_embeddings", "capabilities", "tags", "enabled",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "capabilities", "created_at", "updated_at"]
        validators = []


class VirtualModelSerializer(StrictModelSerializer):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = VirtualModel
        fields = ["id", "name", "description", "strategy", "candidates", "constraints", "enabled", "owner",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]
        validators = []  # per-tenant uniqueness is checked by the model's full_clean, which knows the tenant

    def get_owner(self, obj) -> str:
        return "global" if obj.tenant_id is None else "tenant"


class ModelRouteSerializer(StrictModelSerializer):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = ModelRoute
        fields = ["id", "model", "primary", "fallbacks", "cost_limit_per_1k", "performance_target_ms", "enabled",
                  "owner", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]
        validators = []

    def get_owner(self, obj) -> str:
        return "global" if obj.tenant_id is None else "tenant"
