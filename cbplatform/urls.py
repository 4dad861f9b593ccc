from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.views import root
from apps.tenants.graphql_view import CbGraphQLView

urlpatterns = [
    path("", root, name="root"),
    path("admin/", admin.site.urls),
    path("api/", include("apps.tenants.api.urls")),
    path("api/", include("apps.providers.api.urls")),
    path("api/", include("apps.rules.api.urls")),
    path("api/", include("apps.billing.api.urls")),
    path("api/", include("apps.billing.api.cost_rules_urls")),
    path("api/", include("apps.billing.api.analytics_urls")),
    path("api/", include("apps.billing.api.request_logs_urls")),
    path("api/", include("apps.workflows.api.urls")),
    path("api/", include("apps.functions.api.urls")),
    path("api/", include("apps.agents.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("graphql", CbGraphQLView.as_view(), name="graphql"),
    path("graphql/", CbGraphQLView.as_view()),
    path("dashboard/", include("apps.dashboard.urls")),
]

admin.site.site_header = "cbplatform administration"
admin.site.site_title = "cbplatform"


def handler404(request, exception=None):
    """/api/… answers a JSON 404 in the API's error shape for any unmatched path (e.g. `/api/providers/a.b/`);
    other paths keep Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)
