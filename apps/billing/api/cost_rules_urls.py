from rest_framework.routers import SimpleRouter

from .cost_rules_views import CostRuleViewSet

router = SimpleRouter()
router.register("cost-rules", CostRuleViewSet, basename="cost-rule")
urlpatterns = router.urls
