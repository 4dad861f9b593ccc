from apps.core.api import api_router

from .views import RuleViewSet

router = api_router()
router.register("rules", RuleViewSet, basename="rule")
urlpatterns = router.urls
