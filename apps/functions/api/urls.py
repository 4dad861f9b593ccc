from django.urls import re_path

from apps.core.api import api_router

from .views import ChainViewSet, EventView, ExecutionViewSet, FunctionViewSet, TriggerViewSet

router = api_router()
router.register("functions", FunctionViewSet, basename="function")
router.register("function-triggers", TriggerViewSet, basename="function-trigger")
router.register("function-chains", ChainViewSet, basename="function-chain")
router.register("function-executions", ExecutionViewSet, basename="function-execution")
urlpatterns = [*router.urls, re_path(r"^events/?$", EventView.as_view(), name="events")]
