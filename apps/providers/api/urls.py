from rest_framework.routers import SimpleRouter

from .views import CredentialViewSet, ModelEntryViewSet, ProviderViewSet

router = SimpleRouter()
router.register("providers", ProviderViewSet, basename="provider")
router.register("credentials", CredentialViewSet, basename="credential")
router.register("models", ModelEntryViewSet, basename="modelentry")
urlpatterns = router.urls
