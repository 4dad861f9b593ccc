"""Mounted under /api/: /api/analytics/… and OpenRouter's /api/v1/generation."""

from django.urls import path

from . import analytics_views as views

urlpatterns = [
    path("analytics/summary/", views.SummaryView.as_view(), name="analytics-summary"),
    path("analytics/daily/", views.DailyView.as_view(), name="analytics-daily"),
    path("analytics/monthly/", views.MonthlyView.as_view(), name="analytics-monthly"),
    path("analytics/breakdown/<str:dimension>/", views.BreakdownView.as_view(), name="analytics-breakdown"),
    path("analytics/top-models/", views.TopModelsView.as_view(), name="analytics-top-models"),
    path("analytics/projection/", views.ProjectionView.as_view(), name="analytics-projection"),
    path("analytics/performance/", views.PerformanceView.as_view(), name="analytics-performance"),
    path("v1/generation", views.GenerationView.as_view(), name="generation"),
]
