from apps.core.api import api_router

from .views import InstanceViewSet, TokenViewSet, WorkflowViewSet

router = api_router()
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("workflow-instances", InstanceViewSet, basename="workflow-instance")
router.register("tokens", TokenViewSet, basename="workflow-token")
urlpatterns = router.urls
