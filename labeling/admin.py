"""Moderators' screens for projects, items (with the review queue) and annotations."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin
from labeling.models import Annotation, Item, Project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
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


class AnnotationInline(admin.TabularInline):
    model = Annotation
    extra = 0
    can_delete = False
    readonly_fields = ["annotator", "label", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "status",
        "label_count",
        "required_labels",
        "decided_label",
        "agreement",
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
        "decided_at",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ["id", "item", "annotator", "label", "created_at"]
    list_filter = ["item__project"]
    list_select_related = ["item", "annotator"]
