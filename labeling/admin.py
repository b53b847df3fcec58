"""Moderators' screens for projects, items (with the review queue) and annotations."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin
from labeling.models import Annotation, ConsensusFit, Item, Project, WorkerSkill
from labeling.services import AnnotationError, item_override


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    list_display = [
        "name",
        "data_kind",
        "overlap",
        "reward_per_label",
        "reward_per_item",
        "is_open",
        "created_at",
    ]
    list_filter = ["data_kind", "is_open"]
    search_fields = ["name"]


class AnnotationInline(admin.TabularInline[Annotation, Item]):
    model = Annotation
    extra = 0
    can_delete = False
    readonly_fields = ["annotator", "label", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin[Item]):
    list_display = [
        "id",
        "project",
        "status",
        "label_count",
        "required_labels",
        "decided_label",
        "agreement",
        "skip_count",
        "contributor",
    ]
    list_filter = ["status", "project"]
    search_fields = ["id", "content_sha256", "text"]
    list_select_related = ["project", "contributor"]
    inlines = [AnnotationInline]
    readonly_fields = [
        "project",
        "contributor",
        "text",
        "image",
        "image_format",
        "width",
        "height",
        "size_bytes",
        "content_sha256",
        "status",
        "label_count",
        "required_labels",
        "decided_label",
        "agreement",
        "confidence",
        "decided_at",
        "created_at",
    ]
    actions = ["accept_plurality"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Item]:
        return super().get_queryset(request).annotate(skip_total=Count("skips"))

    @admin.display(description="skips", ordering="skip_total")
    def skip_count(self, item: Item) -> int:
        """Contributors who passed on it: many skips flag an unclear item."""
        return int(getattr(item, "skip_total", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Accept with the most frequent label (moderator decision, credited)")
    def accept_plurality(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        done = 0
        for item in queryset.select_related("project"):
            labels = list(item.annotations.values_list("label", flat=True))
            if not labels:
                messages.warning(request, f"{item}: no labels to choose from.")
                continue
            top = Counter(labels).most_common(1)[0][0]
            try:
                item_override(item=item, label=top, moderator=request.user)  # type: ignore[arg-type]
            except AnnotationError as exc:
                messages.warning(request, f"{item}: {exc}")
                continue
            done += 1
        messages.success(request, f"Accepted {done} item(s).")


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ["id", "item", "annotator", "label", "created_at"]
    list_filter = ["item__project"]
    list_select_related = ["item", "annotator"]


@admin.register(WorkerSkill)
class WorkerSkillAdmin(ReadOnlyAdmin):
    list_display = [
        "user",
        "project",
        "accuracy",
        "label_count",
        "gold_answered",
        "gold_correct",
        "updated_at",
    ]
    list_filter = ["project"]
    search_fields = ["user__wallet_address"]
    list_select_related = ["user", "project"]
    ordering = ["accuracy"]


@admin.register(ConsensusFit)
class ConsensusFitAdmin(ReadOnlyAdmin):
    list_display = [
        "project",
        "method",
        "label_count",
        "iterations",
        "converged",
        "calibration_floor",
        "device",
        "seconds",
        "fitted_at",
    ]
