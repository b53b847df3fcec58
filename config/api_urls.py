"""The REST API, version 1: each app contributes its endpoints."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api_urls")),
    path("", include("labeling.api_urls")),
    path("", include("rewards.api_urls")),
]
