"""``GET /metrics``: Prometheus' scrape endpoint (see ``config.metrics``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from config.metrics import CONTENT_TYPE_LATEST, client_address, metrics_allowed, metrics_exposition


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    allowed = metrics_allowed(
        authorization=request.META.get("HTTP_AUTHORIZATION", ""),
        address=client_address(request.META, int(str(settings.REST_FRAMEWORK["NUM_PROXIES"]))),
        token=settings.METRICS_TOKEN,
        networks=settings.METRICS_ALLOWED_NETWORKS,
    )
    if not allowed:
        return HttpResponse(
            "metrics: send Authorization: Bearer <METRICS_TOKEN>, or scrape from a network in "
            "METRICS_ALLOWED_NETWORKS\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)
