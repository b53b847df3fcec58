"""Moderators' screens for money: the ledger (read-only) and payout batches."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import URLPattern, path

from accounts.admin import ReadOnlyAdmin
from accounts.audit import audit_record
from rewards.chain import ChainError
from rewards.client import chain_client_with_token
from rewards.models import LedgerEntry, PayoutBatch, PayoutTransfer
from rewards.services import payout_batch_approve, payouts_settle


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "amount", "reason", "source", "project", "created_at"]
    list_filter = ["reason", "project"]
    search_fields = ["user__wallet_address", "source"]
    list_select_related = ["user", "project"]


class PayoutTransferInline(admin.TabularInline[PayoutTransfer, PayoutBatch]):
    model = PayoutTransfer
    extra = 0
    can_delete = False
    readonly_fields = ["wallet_address", "amount"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "batch_id",
        "status",
        "recipient_count",
        "total",
        "approved_by",
        "tx_hash",
        "block_number",
        "gas_used",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["batch_id", "tx_hash", "transfers__wallet_address"]
    inlines = [PayoutTransferInline]
    change_list_template = "admin/rewards/payoutbatch/change_list.html"
    actions = ["approve"]

    @admin.action(
        description="Approve the selected prepared batches for payment", permissions=["view"]
    )
    def approve(self, request: HttpRequest, queryset: QuerySet[PayoutBatch]) -> None:
        """With PAYOUT_REQUIRE_APPROVAL, a prepared batch is broadcast only once approved."""
        approved = sum(
            payout_batch_approve(batch=batch, moderator=request.user)  # type: ignore[arg-type]
            for batch in queryset
        )
        messages.success(request, f"Approved {approved} batch(es); the next settlement pays them.")

    def get_urls(self) -> list[URLPattern]:
        settle = path(
            "settle/",
            self.admin_site.admin_view(self.settle_view),
            name="rewards_payoutbatch_settle",
        )
        return [settle, *super().get_urls()]

    def settle_view(self, request: HttpRequest) -> HttpResponse:
        """Pay every due credit now (the same service Celery beat and ``settle_rewards`` run)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("rewards.view_payoutbatch"):
            raise PermissionDenied
        try:
            report = payouts_settle(client=chain_client_with_token())
        except (ChainError, ImproperlyConfigured) as exc:
            messages.error(request, f"Settlement stopped: {exc}")
        else:
            for batch in PayoutBatch.objects.filter(batch_id__in=report.confirmed + report.failed):
                audit_record(actor=request.user, action="payout.settle", target=batch)  # type: ignore[arg-type]
            messages.success(request, f"Settlement: {report.summary}.")
        return redirect("admin:rewards_payoutbatch_changelist")
