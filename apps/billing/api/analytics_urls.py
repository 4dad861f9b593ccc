"""Mounted under /api/: /api/analytics/… and OpenRouter's /api/v1/generation (each with or without the slash)."""

from django.urls import re_path

from . import analytics_views as views

urlpatterns = [
    re_path(r"^analytics/summary/?$", views.SummaryView.as_view(), name="analytics-summary"),
    re_path(r"^analytics/daily/?$", views.DailyView.as_view(), name="analytics-daily"),
    re_path(r"^analytics/monthly/?$", views.MonthlyView.as_view(), name="analytics-monthly"),
    re_path(r"^analytics/breakdown/(?P<dimension>[^/]+)/?$", views.BreakdownView.as_view(),
            name="analytics-breakdown"),
    re_path(r"^analytics/top-models/?$", views.TopModelsView.as_view(), name="analytics-top-models"),
    re_path(r"^analytics/projection/?$", views.ProjectionView.as_view(), name="analytics-projection"),
    re_path(r"^analytics/performance/?$", views.PerformanceView.as_view(), name="analytics-performance"),
    re_path(r"^v1/generation/?$", views.GenerationView.as_view(), name="generation"),
]
