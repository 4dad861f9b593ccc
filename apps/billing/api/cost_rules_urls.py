from apps.core.api import api_router

from .cost_rules_views import CostRuleViewSet

router = api_router()
router.register("cost-rules", CostRuleViewSet, basename="cost-rule")
urlpatterns = router.urls
