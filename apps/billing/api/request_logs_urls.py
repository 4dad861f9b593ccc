from apps.core.api import api_router

from .request_logs_views import RequestLogViewSet

router = api_router()
router.register("request-logs", RequestLogViewSet, basename="request-log")
urlpatterns = router.urls
