"""/api/rules/: the tenant's named rules (built-ins listed read-only), and a dry-run evaluation."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.rules import selectors, services
from apps.rules.access import rule_access_by_id
from apps.rules.engine import BUILTIN_DESCRIPTIONS, BUILTIN_RULES
from apps.rules.models import Rule
from apps.tenants.api.permissions import IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant

from .serializers import EvaluateRequestSerializer, EvaluateResponseSerializer, ListedRuleSerializer, RuleSerializer


class RuleViewSet(viewsets.ModelViewSet):
    """Named rules conditions reference by name. The list holds the built-ins too (`builtin: true`, `id: null`,
    read-only); a tenant rule of the same name shadows a built-in. Conditions are compiled on save: a bad one is
    a 400 listing every problem under `condition`."""

    serializer_class = RuleSerializer
    permission_classes = [IsTenantAdmin]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Rule.objects.none()
        return selectors.rule_list(tenant=request_tenant(self.request))

    def get_object(self):
        rule = rule_access_by_id(request_tenant(self.request), self.kwargs["pk"],
                                 for_write=self.request.method not in ("GET", "HEAD", "OPTIONS"))
        self.check_object_permissions(self.request, rule)
        return rule

    @extend_schema(responses=ListedRuleSerializer(many=True))
    def list(self, request, *args, **kwargs):
        tenant_rules = list(self.get_queryset())
        shadowing = {rule.name for rule in tenant_rules if rule.enabled}
        builtins = [{"id": None, "name": name, "description": BUILTIN_DESCRIPTIONS.get(name, ""),
                     "condition": condition, "enabled": True, "builtin": True, "shadowed": name in shadowing,
                     "created_at": None, "updated_at": None}
                    for name, condition in sorted(BUILTIN_RULES.items())]
        rows = [*RuleSerializer(tenant_rules, many=True).data, *ListedRuleSerializer(builtins, many=True).data]
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(page) if page is not None else Response(rows)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = _field_errors(services.rule_create, tenant=request_tenant(self.request), **data)

    def perform_update(self, serializer):
        serializer.instance = _field_errors(services.rule_update, tenant=request_tenant(self.request),
                                            rule=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.rule_delete(tenant=request_tenant(self.request), rule=instance)

    @extend_schema(request=EvaluateRequestSerializer,
                   responses={200: EvaluateResponseSerializer,
                              400: OpenApiResponse(description="Bad body or condition: field errors, every "
                                                               "problem of the condition under `condition`.")})
    @action(detail=False, methods=["post"])
    def evaluate(self, request):
        """Dry run: compile `condition` (or the named `rule`) with the tenant's named rules and evaluate it
        against `data`, `metadata` and other `facts`. Nothing is stored."""
        body = EvaluateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        result = _field_errors(selectors.rule_evaluate, tenant=request_tenant(request), rule=values.get("rule"),
                               condition=values.get("condition"), data=values["data"], metadata=values["metadata"],
                               facts=values["facts"])
        return Response(result)


def _field_errors(service, **kwargs):
    try:
        return service(**kwargs)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from None
