from apps.core.api import api_router

from .views import CredentialViewSet, ModelEntryViewSet, ModelRouteViewSet, ProviderViewSet, VirtualModelViewSet

router = api_router()
router.register("providers", ProviderViewSet, basename="provider")
router.register("credentials", CredentialViewSet, basename="credential")
router.register("models", ModelEntryViewSet, basename="modelentry")
router.register("virtual-models", VirtualModelViewSet, basename="virtualmodel")
router.register("routes", ModelRouteViewSet, basename="modelroute")
urlpatterns = router.urls
