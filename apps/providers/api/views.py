from django.core.exceptions import PermissionDenied
from rest_framework import exceptions, viewsets

from apps.providers import access, selectors, services
from apps.providers.models import ModelEntry, ModelRoute, Provider, ProviderCredential, VirtualModel
from apps.tenants.api.access import AccessByIdMixin
from apps.tenants.api.permissions import IsStaffOrReadOnly, IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant

from .serializers import (
    CredentialSerializer,
    ModelEntrySerializer,
    ModelRouteSerializer,
    ProviderSerializer,
    VirtualModelSerializer,
)


def _forbidden(exc: PermissionDenied):
    return exceptions.PermissionDenied(str(exc) or None)


class ProviderViewSet(AccessByIdMixin, viewsets.ModelViewSet):
    """Global providers (read-only here) and the tenant's own, which it may create, change and delete."""

    serializer_class = ProviderSerializer
    permission_classes = [IsTenantAdmin]
    filterset_fields = None
    access_by_id = staticmethod(access.provider_access_by_id)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Provider.objects.none()
        return selectors.provider_list(tenant=request_tenant(self.request)).prefetch_related("credentials")

    def perform_create(self, serializer):
        serializer.instance = services.provider_create(tenant=request_tenant(self.request),
                                                       **serializer.validated_data)

    def perform_update(self, serializer):
        try:
            serializer.instance = services.provider_update(tenant=request_tenant(self.request),
                                                           provider=serializer.instance, **serializer.validated_data)
        except PermissionDenied as exc:
            raise _forbidden(exc) from None

    def perform_destroy(self, instance):
        try:
            services.provider_delete(tenant=request_tenant(self.request), provider=instance)
        except PermissionDenied as exc:
            raise _forbidden(exc) from None


class CredentialViewSet(AccessByIdMixin, viewsets.ModelViewSet):
    """Keys of the tenant's own providers. `api_key` is write-only; responses carry a masked `hint`."""

    serializer_class = CredentialSerializer
    permission_classes = [IsTenantAdmin]
    access_by_id = staticmethod(access.credential_access_by_id)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ProviderCredential.objects.none()
        credentials = selectors.credential_list(tenant=request_tenant(self.request))
        provider = self.request.query_params.get("provider")
        if provider:
            if not provider.isdigit():
                raise exceptions.ValidationError({"provider": "Must be a provider id."})
            credentials = credentials.filter(provider_id=int(provider))
        return credentials

    def get_serializer(self, *args, **kwargs):
        if getattr(self, "swagger_fake_view", False):
            return CredentialSerializer(*args, **kwargs)
        tenant = request_tenant(self.request)
        kwargs["provider_queryset"] = selectors.provider_list(tenant=tenant).filter(tenant=tenant)
        return CredentialSerializer(*args, **kwargs)

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = services.credential_create(
                tenant=request_tenant(self.request), provider=data["provider"], api_key=data["api_key"],
                name=data.get("name", ""), enabled=data.get("enabled", True))
        except PermissionDenied as exc:
            raise _forbidden(exc) from None

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.credential_update(
            tenant=request_tenant(self.request), credential=serializer.instance, api_key=data.get("api_key"),
            name=data.get("name"), enabled=data.get("enabled"))


class ModelEntryViewSet(viewsets.ModelViewSet):
    """The model catalogue: every authenticated caller reads it; staff change it."""

    serializer_class = ModelEntrySerializer
    permission_classes = [IsStaffOrReadOnly]
    queryset = ModelEntry.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelEntry.objects.none()
        if self.request.user.is_staff:
            return ModelEntry.objects.select_related("provider")
        tenant = self.request.auth.tenant if hasattr(self.request.auth, "tenant") else None
        if tenant is None:
            try:
                tenant = request_tenant(self.request)
            except exceptions.APIException:
                tenant = None
        return selectors.model_list(tenant=tenant)

    def perform_create(self, serializer):
        serializer.instance = services.model_entry_save(entry=ModelEntry(**serializer.validated_data))

    def perform_update(self, serializer):
        entry = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(entry, name, value)
        serializer.instance = services.model_entry_save(entry=entry)


class _TenantRoutingConfigViewSet(AccessByIdMixin, viewsets.ModelViewSet):
    """Global rows are visible and read-only; the tenant creates, changes and deletes its own."""

    permission_classes = [IsTenantAdmin]
    model = None
    selector = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return type(self).selector(tenant=request_tenant(self.request)).select_related("tenant")

    def _save(self, serializer, instance):
        for name, value in serializer.validated_data.items():
            setattr(instance, name, value)
        try:
            serializer.instance = services.tenant_config_save(tenant=request_tenant(self.request), instance=instance)
        except PermissionDenied as exc:
            raise _forbidden(exc) from None

    def perform_create(self, serializer):
        self._save(serializer, self.model())

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        try:
            services.tenant_config_delete(tenant=request_tenant(self.request), instance=instance)
        except PermissionDenied as exc:
            raise _forbidden(exc) from None


class VirtualModelViewSet(_TenantRoutingConfigViewSet):
    """Virtual models: a name clients send, routed among `candidates` by `strategy` under `constraints`."""

    serializer_class = VirtualModelSerializer
    model = VirtualModel
    selector = staticmethod(selectors.virtual_model_list)
    access_by_id = staticmethod(access.virtual_model_access_by_id)


class ModelRouteViewSet(_TenantRoutingConfigViewSet):
    """The model_specific route table: requested model → primary provider, fallbacks, cost limit."""

    serializer_class = ModelRouteSerializer
    model = ModelRoute
    selector = staticmethod(selectors.model_route_list)
    access_by_id = staticmethod(access.model_route_access_by_id)
