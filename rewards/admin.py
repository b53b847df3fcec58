"""Moderators' screens for money: the ledger, the gold bonuses kept at the upgrade that brought
their reversals, and the budget epochs' closes (read-only), payout batches (approve or hold with a
reason, settle now), the payout settings, and reconciliation runs (alerts)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from accounts.admin import ReadOnlyAdmin
from accounts.admin_audit import AuditedModelAdmin, ReasonForm, reason_or_confirmation
from accounts.audit import audit_record
from accounts.models import User
from config.ids import parse_id
from rewards.approval import batch_needs_approval, payout_settings
from rewards.asset import payout_asset
from rewards.chain import ChainError
from rewards.client import chain_client_with_token
from rewards.forms import units_to_base
from rewards.models import (
    EpochClose,
    GoldBonusKept,
    LedgerEntry,
    PayoutBatch,
    PayoutSettings,
    PayoutTransfer,
    ReconciliationRun,
    RewardPolicy,
)
from rewards.selectors import explorer_tx_url, reward_policy_in_force
from rewards.services import (
    payout_batch_approve,
    payout_batch_hold,
    payout_settings_update,
    payouts_settle,
    reward_policy_update,
)

APPROVE_PERMISSION = "rewards.approve_payoutbatch"


def _amount(value: int | None) -> str:
    return payout_asset().format(value)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "amount_display",
        "reason",
        "source",
        "item_display",
        "project",
        "created_at",
    ]
    list_filter = ["reason", "project"]
    search_fields = ["user__wallet_address", "source"]
    list_select_related = ["user", "project", "item__project"]

    @admin.display(description="item", ordering="item")
    def item_display(self, entry: LedgerEntry) -> str:
        # Named as moderators name items everywhere: "Sentiment #13".
        return "" if entry.item is None else f"{entry.item.project.name} #{entry.item.pk}"

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, entry: LedgerEntry) -> str:
        return _amount(entry.amount)


@admin.register(GoldBonusKept)
class GoldBonusKeptAdmin(ReadOnlyAdmin):
    """The gold bonuses owed back when reversals began, kept (grandfathered) by the upgrade."""

    list_display = ["bonus", "gold_version", "memo", "created_at"]
    list_select_related = ["bonus__user"]
    search_fields = ["bonus__source", "bonus__user__wallet_address"]


@admin.register(EpochClose)
class EpochCloseAdmin(ReadOnlyAdmin):
    """Each closed budget epoch: what it spent against its budget, the rate its cut credits were
    paid at, and whose credits it left out (held by a fraud flag at the close)."""

    list_display = ["project", "epoch", "budget_display", "spent_display", "rate", "held"]
    list_filter = ["project"]
    list_select_related = ["project"]
    fields = readonly_fields = (
        "project",
        "epoch",
        "budget",
        "spent",
        "scaled_to",
        "cut_from",
        "cut_to",
        "rate",
        "held_users",
        "policy",
        "created_at",
    )

    @admin.display(description="budget", ordering="budget")
    def budget_display(self, close: EpochClose) -> str:
        return _amount(close.budget)

    @admin.display(description="spent", ordering="spent")
    def spent_display(self, close: EpochClose) -> str:
        return _amount(close.spent)

    @admin.display(description="paid at")
    def rate(self, close: EpochClose) -> str:
        if not int(close.cut_from):
            return "in full"
        return f"{int(close.cut_to) / int(close.cut_from):.2%}"

    @admin.display(description="held or banned at the close")
    def held(self, close: EpochClose) -> int:
        return len(close.held_users)


class PayoutTransferInline(admin.TabularInline[PayoutTransfer, PayoutBatch]):
    model = PayoutTransfer
    extra = 0
    can_delete = False
    fields = ["wallet_address", "amount_display"]
    readonly_fields = ["wallet_address", "amount_display"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="amount")
    def amount_display(self, transfer: PayoutTransfer) -> str:
        return _amount(transfer.amount)


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "short_batch_id",
        "status",
        "waiting",
        "mode",
        "recipient_count",
        "total_display",
        "approved_by",
        "transaction",
        "block_number",
        "gas_used",
        "created_at",
    ]
    list_filter = ["status", "mode"]
    # approved_by is nullable: Django's default select_related leaves it out (a query per row).
    list_select_related = ["approved_by"]
    search_fields = ["batch_id", "tx_hash", "transfers__wallet_address"]
    inlines = [PayoutTransferInline]
    change_list_template = "admin/rewards/payoutbatch/change_list.html"
    actions = ["approve", "hold"]

    @admin.display(description="batch id", ordering="batch_id")
    def short_batch_id(self, batch: PayoutBatch) -> str:
        return f"{batch.batch_id[:10]}…"

    @admin.display(description="total", ordering="total")
    def total_display(self, batch: PayoutBatch) -> str:
        return _amount(batch.total)

    @admin.display(description="waiting for")
    def waiting(self, batch: PayoutBatch, row: PayoutSettings | None = None) -> str:
        if batch.status != PayoutBatch.Status.PREPARED:
            return ""
        if batch.held_at is not None:
            return f"held: {batch.hold_reason}"
        if batch.approved_at is None and batch_needs_approval(batch, row):
            return "approval"
        return "the next settlement"

    def get_list_display(self, request: HttpRequest) -> Any:
        """The "waiting for" column with the payout settings read once for the page: read per
        row, a page of 100 prepared batches ran 100 more queries."""
        row = payout_settings()

        def waiting(batch: PayoutBatch) -> str:
            return self.waiting(batch, row)

        waiting.short_description = "waiting for"  # type: ignore[attr-defined]
        return [
            waiting if name == "waiting" else name for name in super().get_list_display(request)
        ]

    @admin.display(description="transaction")
    def transaction(self, batch: PayoutBatch) -> str:
        if not batch.tx_hash:
            return ""
        url = explorer_tx_url(batch.tx_hash)
        short = f"{batch.tx_hash[:10]}…"
        return format_html('<a href="{}">{}</a>', url, short) if url else short

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        latest = ReconciliationRun.objects.first()
        if latest is not None and not latest.ok:
            url = reverse("admin:rewards_reconciliationrun_change", args=[latest.pk])
            messages.error(
                request,
                format_html(
                    'The last reconciliation with the chain FAILED ({}): <a href="{}">see why</a>.',
                    f"{latest.created_at:%Y-%m-%d %H:%M}",
                    url,
                ),
            )
        return super().changelist_view(request, extra_context)

    def _confirm(
        self, request: HttpRequest, queryset: QuerySet[PayoutBatch], verb: str, effect: str
    ) -> tuple[str | None, TemplateResponse | None]:
        """The reason from a confirmed form, or the confirmation page to show first."""
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            return str(form.cleaned_data["reason"]), None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb.capitalize()} payout batches",
            "verb": verb,
            "effect": effect,
            "batches": [(b, _amount(b.total)) for b in queryset],
            "total": _amount(sum(int(b.total) for b in queryset)),
            "form": form,
            "action": request.POST.get("action", ""),
            "opts": self.model._meta,
        }
        page = TemplateResponse(request, "admin/rewards/payoutbatch/confirm_action.html", context)
        return None, page

    @admin.action(
        description="Approve the selected prepared batches for payment",
        permissions=["approve"],
    )
    def approve(
        self, request: HttpRequest, queryset: QuerySet[PayoutBatch]
    ) -> TemplateResponse | None:
        """With approval required (or above the threshold), a batch is sent only once approved."""
        reason, page = self._confirm(
            request, queryset, "approve", "The next settlement sends them to the chain."
        )
        if page is not None:
            return page
        approved = sum(
            payout_batch_approve(batch=batch, moderator=request.user, reason=reason or "")  # type: ignore[arg-type]
            for batch in queryset
        )
        messages.success(request, f"Approved {approved} batch(es); the next settlement pays them.")
        return None

    @admin.action(description="Hold the selected prepared batches", permissions=["approve"])
    def hold(
        self, request: HttpRequest, queryset: QuerySet[PayoutBatch]
    ) -> TemplateResponse | None:
        reason, page = self._confirm(
            request, queryset, "hold", "They are not sent until a moderator approves them."
        )
        if page is not None:
            return page
        held = sum(
            payout_batch_hold(batch=batch, moderator=request.user, reason=reason or "")  # type: ignore[arg-type]
            for batch in queryset
        )
        messages.success(request, f"Held {held} batch(es).")
        return None

    def get_urls(self) -> list[URLPattern]:
        settle = path(
            "settle/",
            self.admin_site.admin_view(self.settle_view),
            name="rewards_payoutbatch_settle",
        )
        return [settle, *super().get_urls()]

    def settle_view(self, request: HttpRequest) -> HttpResponse:
        """Pay every due credit now (the same service Celery beat and ``settle_rewards`` run),
        once a moderator has confirmed it with a reason: recorded for the run (its counts), and
        with each batch it sent, prepared or left waiting for approval."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(APPROVE_PERMISSION):
            raise PermissionDenied
        reason, page = reason_or_confirmation(
            self,
            request,
            effect="pay every due credit now: sign payout batches and send them to the chain",
            targets=[],
            submit="Settle due rewards",
            notes=[
                "Batches that need a moderator's approval are prepared and wait for it; the "
                "others are sent at once. Celery beat does the same on its schedule."
            ],
            credits_anyone=False,
        )
        if page is not None:
            return page
        actor = request.user
        assert isinstance(actor, User)
        try:
            report = payouts_settle(client=chain_client_with_token())
        except (ChainError, ImproperlyConfigured) as exc:
            # Batches before the error may have been sent: the run is on the trail all the same.
            _settle_audit(actor=actor, reason=reason or "", details={"error": str(exc)[:500]})
            messages.error(request, f"Settlement stopped: {exc}")
        else:
            _settle_audit(
                actor=actor,
                reason=reason or "",
                details={
                    "confirmed": len(report.confirmed),
                    "pending": len(report.pending),
                    "failed": len(report.failed),
                    "awaiting_approval": len(report.awaiting_approval),
                    "other_contract": len(report.other_contract),
                },
            )
            # Each batch the run prepared, sent or found waiting, with where it stands now: a
            # batch prepared to wait for approval was made by this run too.
            named = report.confirmed + report.failed + report.pending + report.awaiting_approval
            for batch in PayoutBatch.objects.filter(batch_id__in=named).order_by("id"):
                audit_record(
                    actor=actor,
                    action="payout.settle",
                    target=batch,
                    details={
                        "reason": reason,
                        "status": batch.status,
                        "awaiting_approval": batch.batch_id in report.awaiting_approval,
                    },
                )
            messages.success(request, f"Settlement: {report.summary}.")
        return redirect("admin:rewards_payoutbatch_changelist")


def _settle_audit(*, actor: User, reason: str, details: dict[str, Any]) -> None:
    """The trail's entry for one "settle now" run, on the payout settings row (the run has no
    record of its own): who, why, and what the run did, even when it touched no batch."""
    audit_record(
        actor=actor,
        action="payout.settle",
        target=payout_settings(),
        details={"reason": reason, **details},
    )


class RewardPolicyForm(forms.ModelForm[RewardPolicy]):
    """A new version of a project's reward policy, amounts in whole units of the asset."""

    per_label_units = forms.CharField(label="Per agreeing label", initial="0")
    per_item_units = forms.CharField(label="Per accepted contribution", initial="0")
    gold_bonus_units = forms.CharField(label="Per right gold answer", initial="0")
    epoch_budget_units = forms.CharField(
        label="Budget per epoch", required=False, help_text="Empty: no budget."
    )

    class Meta:
        model = RewardPolicy
        fields = ["project", "weight_by_posterior", "weight_by_skill", "note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        symbol = payout_asset().symbol
        for name in ("per_label_units", "per_item_units", "gold_bonus_units", "epoch_budget_units"):
            if name in self.fields:
                self.fields[name].label = f"{self.fields[name].label} ({symbol})"
        if "note" in self.fields:  # absent on the read-only view of a past version
            self.fields["note"].required = True
            self.fields["note"].help_text = "Why this version (recorded in the audit trail)."

    def clean_per_label_units(self) -> int | None:
        return units_to_base(self.cleaned_data["per_label_units"])

    def clean_per_item_units(self) -> int | None:
        return units_to_base(self.cleaned_data["per_item_units"])

    def clean_gold_bonus_units(self) -> int | None:
        return units_to_base(self.cleaned_data["gold_bonus_units"])

    def clean_epoch_budget_units(self) -> int | None:
        return units_to_base(self.cleaned_data["epoch_budget_units"], required=False)


@admin.register(RewardPolicy)
class RewardPolicyAdmin(AuditedModelAdmin[RewardPolicy]):
    """Versions are never edited: "add" makes the project's next version from the form."""

    form = RewardPolicyForm
    list_display = [
        "project",
        "version",
        "label_display",
        "item_display",
        "gold_display",
        "weight_by_posterior",
        "weight_by_skill",
        "budget_display",
        "created_by",
        "created_at",
    ]
    list_filter = ["project"]
    list_select_related = ["project", "created_by"]

    @admin.display(description="per label")
    def label_display(self, policy: RewardPolicy) -> str:
        return _amount(policy.per_label)

    @admin.display(description="per contribution")
    def item_display(self, policy: RewardPolicy) -> str:
        return _amount(policy.per_item)

    @admin.display(description="gold bonus")
    def gold_display(self, policy: RewardPolicy) -> str:
        return _amount(policy.gold_bonus)

    @admin.display(description="epoch budget")
    def budget_display(self, policy: RewardPolicy) -> str:
        return "none" if policy.epoch_budget is None else _amount(policy.epoch_budget)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial: dict[str, Any] = dict(super().get_changeform_initial_data(request))
        project_id = parse_id(str(request.GET.get("project", "")))
        if project_id is not None:
            from labeling.models import Project

            project = Project.objects.filter(pk=project_id).first()
            if project is not None:
                # Read only: reward_policy_current would make version 1 on a GET.
                current = reward_policy_in_force(project=project)
                fmt = payout_asset()
                initial.update(
                    per_label_units=fmt.format(current.per_label, symbol=False),
                    per_item_units=fmt.format(current.per_item, symbol=False),
                    gold_bonus_units=fmt.format(current.gold_bonus, symbol=False),
                    epoch_budget_units=""
                    if current.epoch_budget is None
                    else fmt.format(current.epoch_budget, symbol=False),
                    weight_by_posterior=current.weight_by_posterior,
                    weight_by_skill=current.weight_by_skill,
                )
        return initial

    def save_model(self, request: HttpRequest, obj: RewardPolicy, form: Any, change: bool) -> None:
        data = form.cleaned_data
        policy = reward_policy_update(
            project=data["project"],
            changes={
                "per_label": data["per_label_units"],
                "per_item": data["per_item_units"],
                "gold_bonus": data["gold_bonus_units"],
                "epoch_budget": data["epoch_budget_units"],
                "weight_by_posterior": data["weight_by_posterior"],
                "weight_by_skill": data["weight_by_skill"],
            },
            moderator=request.user,  # type: ignore[arg-type]
            note=data["note"],
        )
        obj.pk = policy.pk  # the admin's redirect and messages name the new version


class PayoutSettingsForm(forms.ModelForm[PayoutSettings]):
    """The approval threshold in whole units of the payout asset, with a reason."""

    threshold = forms.CharField(
        required=False,
        help_text="In whole units (e.g. 2500 or 12.5). Batches above it wait for approval; "
        "empty: no threshold.",
    )
    reason = forms.CharField(max_length=500, help_text="Recorded in the audit trail.")

    class Meta:
        model = PayoutSettings
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.approval_threshold is not None:
            self.fields["threshold"].initial = payout_asset().format(
                self.instance.approval_threshold, symbol=False
            )
        self.fields["threshold"].label = f"Approval threshold ({payout_asset().symbol})"

    def clean_threshold(self) -> int | None:
        return units_to_base(str(self.cleaned_data["threshold"]), required=False)


@admin.register(PayoutSettings)
class PayoutSettingsAdmin(AuditedModelAdmin[PayoutSettings]):
    form = PayoutSettingsForm
    list_display = ["__str__", "threshold_display", "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]

    @admin.display(description="approval threshold")
    def threshold_display(self, row: PayoutSettings) -> str:
        if row.approval_threshold is None:
            return "none"
        return _amount(row.approval_threshold)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> PayoutSettings | None:
        payout_settings()  # the one row exists to be edited
        return super().get_object(request, object_id, from_field)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        payout_settings()
        return super().changelist_view(request, extra_context)

    def save_model(
        self, request: HttpRequest, obj: PayoutSettings, form: Any, change: bool
    ) -> None:
        payout_settings_update(
            approval_threshold=form.cleaned_data["threshold"],
            moderator=request.user,  # type: ignore[arg-type]
            reason=form.cleaned_data["reason"],
        )


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "ok", "checked_batches", "failing", "error"]
    list_filter = ["ok"]
    readonly_fields = ["created_at", "ok", "checked_batches", "report", "error"]
    fields = ["created_at", "ok", "checked_batches", "report", "error"]

    @admin.display(description="failing invariants")
    def failing(self, run: ReconciliationRun) -> str:
        return ", ".join(str(r["name"]) for r in run.results if not r.get("ok"))

    @admin.display(description="invariants")
    def report(self, run: ReconciliationRun) -> str:
        lines = []
        for result in run.results:
            verdict = "ok" if result.get("ok") else "FAILED"
            lines.append(
                f"{verdict}: {result['name']} — {result['description']} "
                f"({result['checked']} checked)"
            )
            lines += [f"    {v}" for v in result.get("violations", [])]
        return "\n".join(lines) or "—"
