"""/api/cost-rules/: the tenant's cost-optimisation rules, plus the global ones (read-only here)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from rest_framework import exceptions, serializers, viewsets
from rest_framework.permissions import SAFE_METHODS

from apps.billing import selectors, services
from apps.billing.access import cost_rule_access_by_id
from apps.billing.models import CostRule
from apps.core.api import StrictModelSerializer
from apps.tenants.api.permissions import IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant


class CostRuleSerializer(StrictModelSerializer):
    """`conditions`, `action` and `params` are checked by apps.billing.cost_rules.validate_rule (on save)."""

    owner = serializers.SerializerMethodField()
    conditions = serializers.JSONField(required=False)
    params = serializers.JSONField(required=False)

    class Meta:
        model = CostRule
        fields = ["id", "name", "priority", "enabled", "conditions", "action", "params", "stop_processing", "owner",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]

    def get_owner(self, obj) -> str:
        return "global" if obj.tenant_id is None else "tenant"


class CostRuleViewSet(viewsets.ModelViewSet):
    serializer_class = CostRuleSerializer
    permission_classes = [IsTenantAdmin]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return CostRule.objects.none()
        return selectors.cost_rule_list(tenant=request_tenant(self.request))

    def get_object(self):
        rule = cost_rule_access_by_id(request_tenant(self.request), self.kwargs[self.lookup_field],
                                      for_write=self.request.method not in SAFE_METHODS)
        self.check_object_permissions(self.request, rule)
        return rule

    def _save(self, serializer, instance):
        for name, value in serializer.validated_data.items():
            setattr(instance, name, value)
        try:
            serializer.instance = services.cost_rule_save(tenant=request_tenant(self.request), rule=instance)
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from None

    def perform_create(self, serializer):
        self._save(serializer, CostRule())

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        try:
            services.cost_rule_delete(tenant=request_tenant(self.request), rule=instance)
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from None
