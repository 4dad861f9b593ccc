from apps.core.api import api_router

from .views import BudgetViewSet

router = api_router()
router.register("budgets", BudgetViewSet, basename="budget")
urlpatterns = router.urls
