from rest_framework import serializers

from apps.core.api import StrictModelSerializer, StrictSerializer
from apps.rules.models import Rule


class RuleSerializer(StrictModelSerializer):
    condition = serializers.JSONField(help_text="A rules-engine condition in either tagged shape; compiled on save.")
    builtin = serializers.SerializerMethodField()
    shadowed = serializers.SerializerMethodField()

    class Meta:
        model = Rule
        fields = ["id", "name", "description", "condition", "enabled", "builtin", "shadowed", "created_at",
                  "updated_at"]
        read_only_fields = ["id", "builtin", "shadowed", "created_at", "updated_at"]
        validators = []  # per-tenant uniqueness is the service's (it knows the tenant): a 400 on `name`

    def get_builtin(self, obj) -> bool:
        return False

    def get_shadowed(self, obj) -> bool:
        return False


class ListedRuleSerializer(StrictSerializer):
    """An entry of the list: one of the tenant's rules, or a built-in (read-only, `id` and timestamps null)."""

    id = serializers.IntegerField(allow_null=True, help_text="Null for built-ins: they are not rows.")
    name = serializers.CharField()
    description = serializers.CharField()
    condition = serializers.JSONField()
    enabled = serializers.BooleanField()
    builtin = serializers.BooleanField()
    shadowed = serializers.BooleanField(help_text="A built-in the tenant's enabled rule of the same name replaces.")
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class EvaluateRequestSerializer(StrictSerializer):
    condition = serializers.JSONField(required=False, allow_null=True,
                                      help_text="A condition to try (either tagged shape; null: always true).")
    rule = serializers.CharField(required=False, help_text="Or: the name of a named rule (built-in or the tenant's).")
    data = serializers.DictField(required=False, default=dict, help_text="The token's data.")
    metadata = serializers.DictField(required=False, default=dict, help_text="The token's metadata.")
    facts = serializers.DictField(required=False, default=dict,
                                  help_text="Other top-level facts (token, instance, event, …), visible to "
                                            "field paths and CEL under their names.")

    def validate(self, attrs):
        if ("condition" in self.initial_data) == ("rule" in attrs):
            raise serializers.ValidationError({"condition": ["Give exactly one of `condition` and `rule`."]})
        reserved = sorted({"data", "metadata"} & set(attrs.get("facts", {})))
        if reserved:
            raise serializers.ValidationError({"facts": [f"Pass {', '.join(reserved)} at the top level."]})
        return attrs


class EvaluateResponseSerializer(StrictSerializer):
    passed = serializers.BooleanField()
    condition = serializers.JSONField(help_text="The condition in canonical (internally tagged) form.")
    explanation = serializers.JSONField(help_text="How each part evaluated: kind, field, expected, seen, passed.")
