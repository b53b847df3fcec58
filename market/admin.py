"""Moderators' screens for dataset grants (given and revoked through audited services),
purchases and exports (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin
from accounts.models import User
from market.models import DatasetExport, DatasetGrant, DatasetPurchase
from market.services import GrantError, grant_give, grant_revoke


class GrantAddForm(forms.ModelForm[DatasetGrant]):
    class Meta:
        model = DatasetGrant
        fields = ["project", "buyer", "note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        buyer = self.fields["buyer"]
        if isinstance(buyer, forms.ModelChoiceField):
            buyer.queryset = User.objects.filter(role=User.Role.BUYER).order_by("username")


@admin.register(DatasetGrant)
class DatasetGrantAdmin(admin.ModelAdmin[DatasetGrant]):
    """Give a buyer a dataset (Add), revoke grants (action); both audited. Never edited."""

    list_display = ["buyer", "project", "source", "granted_by", "created_at", "revoked_at"]
    list_filter = ["source", "project"]
    search_fields = ["buyer__username", "purchase__tx_hash"]
    actions = ["revoke_grants"]
    readonly_fields = [
        "project",
        "buyer",
        "source",
        "granted_by",
        "purchase",
        "note",
        "created_at",
        "revoked_at",
        "revoked_by",
    ]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = GrantAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else list(self.readonly_fields)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["project", "buyer", "note"] if obj is None else list(self.readonly_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the trail keeps who had access when

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: DatasetGrant, form: Any, change: bool) -> None:
        moderator = request.user
        assert isinstance(moderator, User)
        try:
            saved = grant_give(
                project=obj.project, buyer=obj.buyer, moderator=moderator, note=obj.note
            )
        except GrantError as exc:
            # Shown on the page; nothing was written.
            self.message_user(request, exc.message, messages.ERROR)
            raise _GrantRefused(exc.message) from exc
        obj.pk = saved.pk

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        try:
            return super().add_view(request, form_url, extra_context)
        except _GrantRefused:
            from django.shortcuts import redirect

            return redirect(request.path)

    @admin.action(description="Revoke the selected grants (audited)")
    def revoke_grants(self, request: HttpRequest, queryset: QuerySet[DatasetGrant]) -> None:
        moderator = request.user
        assert isinstance(moderator, User)
        revoked = sum(grant_revoke(grant=g, moderator=moderator) for g in queryset)
        self.message_user(request, f"{revoked} grant(s) revoked.", messages.SUCCESS)


class _GrantRefused(Exception):
    pass


@admin.register(DatasetPurchase)
class DatasetPurchaseAdmin(ReadOnlyAdmin):
    list_display = ["tx_hash", "project", "buyer", "amount", "block_number", "created_at"]
    search_fields = ["tx_hash", "buyer__username", "payer"]


@admin.register(DatasetExport)
class DatasetExportAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "buyer", "format", "status", "records", "size_bytes"]
    list_filter = ["status", "format"]
