"""The project's URLs plus the budgets API (mounted here until cbplatform/urls.py includes it)."""

from django.urls import include, path

from cbplatform.urls import urlpatterns as project_urlpatterns

urlpatterns = [path("api/", include("apps.billing.api.urls")), *project_urlpatterns]
