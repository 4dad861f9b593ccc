from apps.core.api import api_router

from .views import ApiKeyViewSet, TenantViewSet

router = api_router()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("keys", ApiKeyViewSet, basename="apikey")
urlpatterns = router.urls
