from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from apps.tenants import selectors, services
from apps.tenants.access import api_key_access_by_id
from apps.tenants.models import ApiKey, Tenant

from .access import AccessByIdMixin
from .permissions import IsTenantAdmin
from .serializers import ApiKeyCreatedSerializer, ApiKeySerializer, TenantSerializer
from .tenancy import request_tenant


class TenantPermission(BasePermission):
    """Staff manage every tenant; others read the tenants they belong to."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or bool(user.is_staff)


class TenantViewSet(viewsets.ModelViewSet):
    serializer_class = TenantSerializer
    permission_classes = [TenantPermission]
    lookup_field = "slug"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Tenant.objects.none()
        if isinstance(self.request.auth, ApiKey):
            return Tenant.objects.filter(pk=self.request.auth.tenant_id)
        if self.request.user.is_staff:
            return Tenant.objects.all()
        return selectors.tenants_for_user(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.tenant_create(
            slug=data["slug"], name=data.get("name", ""),
            default_routing_strategy=data.get("default_routing_strategy", ""),
        )


class ApiKeyViewSet(AccessByIdMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                    mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The tenant's API keys. Creating one returns its secret once; DELETE revokes (the row stays for audit)."""

    serializer_class = ApiKeySerializer
    permission_classes = [IsTenantAdmin]
    access_by_id = staticmethod(api_key_access_by_id)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiKey.objects.none()
        return selectors.api_key_list(tenant=request_tenant(self.request))

    @extend_schema(request=ApiKeySerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key, secret = services.api_key_create(
            tenant=request_tenant(request), name=data["name"], scopes=data.get("scopes"),
            user_label=data.get("user_label", ""), project_label=data.get("project_label", ""),
            expires_at=data.get("expires_at"),
            user=request.user if getattr(request.user, "pk", None) else None,
            limits={name: data[name] for name in ("rate_limit_rpm", "rate_limit_tpm", "max_concurrent",
                                                  "request_logging") if name in data},
        )
        key.key = secret
        response = Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    def perform_update(self, serializer):
        if "scopes" in serializer.validated_data:
            serializer.validated_data["scopes"] = services.validate_scopes(serializer.validated_data["scopes"])
        serializer.save()

    def perform_destroy(self, instance):
        services.api_key_revoke(tenant=request_tenant(self.request), api_key=instance)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = self.get_object()
        services.api_key_revoke(tenant=request_tenant(request), api_key=key)
        return Response(ApiKeySerializer(key).data)
