from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, viewsets
from rest_framework.permissions import SAFE_METHODS

from apps.billing import selectors, services
from apps.billing.access import budget_access_by_id
from apps.billing.models import Budget
from apps.tenants.api.permissions import IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant
from apps.tenants.selectors import api_key_list

from .serializers import API_NAMES, BudgetSerializer


def _api_errors(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError({API_NAMES.get(name, name): messages
                                           for name, messages in exc.message_dict.items()})
    return exceptions.ValidationError({"non_field_errors": exc.messages})


class BudgetViewSet(viewsets.ModelViewSet):
    """The tenant's budgets. `used`, `remaining`, `isExhausted` and `alerts` are for the current period, from
    the usage ledger (which trails live traffic by the ingestion delay)."""

    serializer_class = BudgetSerializer
    permission_classes = [IsTenantAdmin]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Budget.objects.none()
        return selectors.budget_list(tenant=request_tenant(self.request))

    def get_object(self):
        budget = budget_access_by_id(request_tenant(self.request), self.kwargs[self.lookup_field],
                                     for_write=self.request.method not in SAFE_METHODS)
        self.check_object_permissions(self.request, budget)
        return budget

    def get_serializer(self, *args, **kwargs):
        if not getattr(self, "swagger_fake_view", False):
            kwargs["api_key_queryset"] = api_key_list(tenant=request_tenant(self.request))
        return BudgetSerializer(*args, **kwargs)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        secret = data.pop("webhookSecret", None)
        try:
            serializer.instance = services.budget_create(tenant=request_tenant(self.request), webhook_secret=secret,
                                                         **data)
        except DjangoValidationError as exc:
            raise _api_errors(exc) from None

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        secret = data.pop("webhookSecret", None)
        try:
            serializer.instance = services.budget_update(tenant=request_tenant(self.request),
                                                         budget=serializer.instance, webhook_secret=secret, **data)
        except DjangoValidationError as exc:
            raise _api_errors(exc) from None

    def perform_destroy(self, instance):
        services.budget_delete(tenant=request_tenant(self.request), budget=instance)
