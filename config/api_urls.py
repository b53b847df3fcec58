"""The REST API, version 1: each app contributes its endpoints."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config.health import HealthApi, LiveApi, ReadyApi

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
    path("health/live", LiveApi.as_view(), name="health-live"),
    path("health/ready", ReadyApi.as_view(), name="health-ready"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularRedocView.as_view(url_name="schema"), name="docs"),
    path("", include("accounts.api_urls")),
    path("", include("labeling.api_urls")),
    path("", include("market.api_urls")),
    path("", include("rewards.api_urls")),
    path("", include("moderation.api_urls")),
]
