"""The per-contributor page in admin: gold accuracy, confusion against accepted decisions (a heat
map per project), labels per day, earnings, flags and the wallets they link."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import User
from moderation.backoffice import contributor_report
from moderation.charts import bar_chart, heat_map


def contributor_report_view(
    model_admin: ModelAdmin[Any], request: HttpRequest, user_id: int
) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise Http404("No user with this id.")
    report = contributor_report(user=user)
    heat_maps = []
    for confusion in report.confusions:
        charts = [
            heat_map(
                confusion.shares,
                rows=confusion.classes,
                columns=confusion.classes,
                counts=confusion.counts,
                title=f"{confusion.project.name}: decided (rows) vs labeled (columns)",
            )
        ]
        fitted = confusion.skill.confusion if confusion.skill is not None else None
        if fitted and len(fitted) == len(confusion.classes):
            # The consensus model's estimate, from every label of the project (last full fit).
            charts.append(
                heat_map(
                    fitted,
                    rows=confusion.classes,
                    columns=confusion.classes,
                    title=f"{confusion.project.name}: the consensus model's estimate",
                )
            )
        heat_maps.append((confusion, charts))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Contributor {user}",
        "subject": user,
        "report": report,
        "heat_maps": heat_maps,
        "labels_chart": bar_chart(
            [(f"{day:%b %d}", n) for day, n in report.labels_per_day],
            title="Labels per day, last 30 days",
        ),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/crowdmint/contributor.html", context)
