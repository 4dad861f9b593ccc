from rest_framework.routers import SimpleRouter

from .views import InstanceViewSet, TokenViewSet, WorkflowViewSet

router = SimpleRouter()
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("workflow-instances", InstanceViewSet, basename="workflow-instance")
router.register("tokens", TokenViewSet, basename="workflow-token")
urlpatterns = router.urls
