"""URL map: contributor pages at ``/``, the REST API at ``/api/v1/``, moderators at ``/admin/``."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("", include("frontend.urls")),
]
