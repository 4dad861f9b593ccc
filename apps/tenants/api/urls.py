from rest_framework.routers import SimpleRouter

from .views import ApiKeyViewSet, TenantViewSet

router = SimpleRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("keys", ApiKeyViewSet, basename="apikey")
urlpatterns = router.urls
