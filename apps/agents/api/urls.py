from apps.core.api import api_router

from .views import AgentViewSet, ExecutionViewSet, PlaceAgentViewSet

router = api_router()
router.register("agents", AgentViewSet, basename="agent")
router.register("place-agents", PlaceAgentViewSet, basename="place-agent")
router.register("agent-executions", ExecutionViewSet, basename="agent-execution")
urlpatterns = router.urls
