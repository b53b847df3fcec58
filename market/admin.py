"""Moderators' screens for dataset grants (given and revoked through audited services),
purchases, price changes and exports (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from accounts.admin import ReadOnlyAdmin
from accounts.admin_audit import REASON_FIELD, AuditedModelAdmin, reason_or_confirmation
from accounts.models import User
from market.models import (
    DatasetExport,
    DatasetGrant,
    DatasetPriceChange,
    DatasetPurchase,
    ItemImport,
)
from market.ranges import attachment
from market.services import GrantError, ItemImportError, grant_give, grant_revoke, import_request
from rewards.asset import payout_asset


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
class DatasetGrantAdmin(AuditedModelAdmin[DatasetGrant]):
    """Give a buyer a dataset (Add), revoke grants (action); both audited. Never edited."""

    list_display = ["buyer", "project", "source", "granted_by", "created_at", "revoked_at"]
    # granted_by is nullable: Django's default select_related leaves it out (a query per row).
    list_select_related = ["buyer", "project", "granted_by"]
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

    @admin.action(description="Revoke the selected grants (audited)…", permissions=["change"])
    def revoke_grants(
        self, request: HttpRequest, queryset: QuerySet[DatasetGrant]
    ) -> TemplateResponse | None:
        reason, page = reason_or_confirmation(
            self,
            request,
            effect=f"revoke {queryset.count()} grant(s): those buyers can no longer read or "
            "export these datasets (a purchase is not refunded).",
            targets=[
                f"{g.buyer} on {g.project}" for g in queryset.select_related("buyer", "project")
            ],
            submit="Revoke them",
        )
        if page is not None:
            return page
        moderator = request.user
        assert isinstance(moderator, User)
        revoked = sum(
            grant_revoke(grant=g, moderator=moderator, reason=reason or "") for g in queryset
        )
        self.message_user(request, f"{revoked} grant(s) revoked.", messages.SUCCESS)
        return None


class _GrantRefused(Exception):
    """A refused add in admin: the message is shown, nothing was written."""


@admin.register(DatasetPurchase)
class DatasetPurchaseAdmin(ReadOnlyAdmin):
    list_display = [
        "tx_hash",
        "project",
        "buyer",
        "amount_display",
        "price_display",
        "block_number",
        "created_at",
    ]
    search_fields = ["tx_hash", "buyer__username", "payer"]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, purchase: DatasetPurchase) -> str:
        return payout_asset().format(purchase.amount)

    @admin.display(description="price met", ordering="price")
    def price_display(self, purchase: DatasetPurchase) -> str:
        return payout_asset().format(purchase.price)


@admin.register(DatasetPriceChange)
class DatasetPriceChangeAdmin(ReadOnlyAdmin):
    """Every price change, with its time: what a purchase's transfer was held to."""

    list_display = ["project", "previous_display", "price_display", "changed_at", "changed_by"]
    list_filter = ["project"]
    list_select_related = ["project", "changed_by"]

    @admin.display(description="from", ordering="previous_price")
    def previous_display(self, change: DatasetPriceChange) -> str:
        return payout_asset().format(change.previous_price)

    @admin.display(description="to", ordering="price")
    def price_display(self, change: DatasetPriceChange) -> str:
        return payout_asset().format(change.price)


@admin.register(DatasetExport)
class DatasetExportAdmin(ReadOnlyAdmin):
    """Buyers' exports. The files are named, not linked: they are never at a public URL (MEDIA_ROOT
    is not served); the buyer downloads them from the API with their key."""

    list_display = ["id", "project", "buyer", "format", "status", "records", "size_bytes"]
    list_filter = ["status", "format"]
    fields = readonly_fields = (
        "project",
        "buyer",
        "format",
        "filters",
        "status",
        "progress",
        "records",
        "size_bytes",
        "sha256",
        "files",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "expires_at",
    )

    @admin.display(description="files")
    def files(self, export: DatasetExport) -> str:
        names = [Path(f.name or "").name for f in (export.file, export.croissant, export.card) if f]
        if not names:
            return "—"
        return (
            ", ".join(names) + f" (GET /api/v1/exports/{export.pk}/download, with the buyer's key)"
        )


class ItemImportForm(forms.ModelForm[ItemImport]):
    class Meta:
        model = ItemImport
        fields = ["project", "file", "format", "answers"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Gold answers judge every contributor who meets the items (their gold record, the
        # bonus, probation): like one item's gold answer, a file of them needs a reason in the
        # audit trail.
        gold = cleaned.get("answers") == ItemImport.Answers.GOLD
        if gold and not str(cleaned.get(REASON_FIELD, "")).strip():
            self.add_error(
                REASON_FIELD if REASON_FIELD in self.fields else None,
                "Give a reason for importing gold answers (recorded in the audit trail).",
            )
        return cleaned


@admin.register(ItemImport)
class ItemImportAdmin(AuditedModelAdmin[ItemImport]):
    """Moderators import items from a file (Add): a Celery task runs it; the list shows its
    progress and counts, the page the rejected rows. Images: ``manage.py import_items``."""

    list_display = [
        "id",
        "project",
        "format",
        "status",
        "progress_bar",
        "rows",
        "created",
        "duplicates",
        "rejected",
        "created_at",
    ]
    list_filter = ["status", "format"]
    readonly_fields = [
        "project",
        "moderator",
        "file_link",
        "format",
        "answers",
        "status",
        "progress_bar",
        "rows",
        "created",
        "duplicates",
        "rejected",
        "rejected_rows",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ItemImportForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["project", "file", "format", "answers"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def audit_details(self, obj: ItemImport) -> dict[str, Any]:
        # Whether the file's answers become gold, beside the reason the form asked for then.
        return {"format": obj.format, "answers": obj.answers}

    @admin.display(description="file")
    def file_link(self, job: ItemImport) -> str:
        """The uploaded file, through ``file_view`` (MEDIA_ROOT is not served)."""
        if not job.file:
            return "—"
        url = reverse("admin:market_itemimport_file", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, Path(job.file.name or "").name)

    def get_urls(self) -> list[URLPattern]:
        def file(request: HttpRequest, job_id: int) -> HttpResponseBase:
            return self.file_view(request, job_id)

        return [
            path(
                "<int:job_id>/file/",
                self.admin_site.admin_view(file),
                name="market_itemimport_file",
            ),
            *super().get_urls(),
        ]

    def file_view(self, request: HttpRequest, job_id: int) -> HttpResponseBase:
        """The file a moderator imported, as an attachment, for staff who may view imports."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = ItemImport.objects.filter(pk=job_id).exclude(file="").first()
        if job is None:
            raise Http404("No import with a file with this id.")
        try:
            handle = job.file.open("rb")
        except OSError as exc:
            raise Http404("The imported file is no longer stored.") from exc
        response = FileResponse(handle, content_type="application/octet-stream")
        response["Content-Disposition"] = attachment(Path(job.file.name or "").name)
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @admin.display(description="progress")
    def progress_bar(self, job: ItemImport) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}%', job.progress, job.progress
        )

    @admin.display(description="rejected rows (the first ones)")
    def rejected_rows(self, job: ItemImport) -> str:
        lines = [
            f"the file: {r['error']}" if r["row"] is None else f"row {r['row']}: {r['error']}"
            for r in job.report
        ]
        more = job.rejected - len(lines)
        if more > 0:
            lines.append(f"… and {more} more")
        return "\n".join(lines) or "none"

    def save_model(self, request: HttpRequest, obj: ItemImport, form: Any, change: bool) -> None:
        moderator = request.user
        assert isinstance(moderator, User)
        upload = form.cleaned_data["file"]
        try:
            job = import_request(
                project=obj.project,
                moderator=moderator,
                name=upload.name,
                data=upload.read(),
                fmt=obj.format,
                answers=obj.answers,
            )
        except ItemImportError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            raise _GrantRefused(str(exc)) from exc
        obj.pk = job.pk
        # Queued on commit, after this message: the list shows its progress, or why it failed.
        self.message_user(
            request, "The import is submitted: this list shows its progress, or why it failed."
        )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        try:
            return super().add_view(request, form_url, extra_context)
        except _GrantRefused:
            from django.shortcuts import redirect

            return redirect(request.path)
