from apps.core.api import api_router

from .views import AgentExecutionViewSet, AgentViewSet, PlaceAgentViewSet

router = api_router()
router.register("agents", AgentViewSet, basename="agent")
router.register("place-agents", PlaceAgentViewSet, basename="place-agent")
router.register("agent-executions", AgentExecutionViewSet, basename="agent-execution")
urlpatterns = router.urls
