"""URL map: contributor pages at ``/``, the REST API at ``/api/v1/``, moderators at ``/admin/``,
Prometheus metrics at ``/metrics``."""

from django.contrib import admin
from django.urls import include, path

from config.metrics_view import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("metrics", metrics, name="metrics"),
    path("", include("frontend.urls")),
]
