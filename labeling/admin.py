"""Moderators' screens for projects, items (with the review queue) and annotations."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from accounts.admin import ReadOnlyAdmin
from accounts.admin_audit import REASON_FIELD, AuditedModelAdmin
from accounts.models import User
from labeling.admin_review import (
    accept_plurality_action,
    item_image_view,
    item_name,
    review_action_view,
    review_queue_view,
)
from labeling.models import Annotation, ConsensusFit, Item, Project, WorkerSkill
from labeling.services import (
    AnnotationError,
    item_gold_set,
    item_gold_validate,
)
from labeling.services.review import LABEL_TASKS
from market.services.prices import dataset_price_set
from rewards.asset import payout_asset

# Payout rights (rewards.admin.APPROVE_PERMISSION): set what contributors and buyers pay.
PAYOUT_PERMISSION = "rewards.approve_payoutbatch"
# How a project's crowd works (its classes, thresholds, fraud policy, whether it is open...) is
# set by whoever may set projects up: the moderators. Payout managers change projects only for
# their price, so they hold labeling.change_project but not this.
PROJECT_SETUP_PERMISSION = "labeling.add_project"
# What a project pays and costs: the payout rights' part of it.
MONEY_FIELDS = ("price", "reward_per_label", "reward_per_item")


@admin.register(Project)
class ProjectAdmin(AuditedModelAdmin[Project]):
    list_display = [
        "name",
        "data_kind",
        "task",
        "overlap",
        "consensus_method",
        "rates_short",
        "price_display",
        "is_open",
        "created_at",
    ]
    list_filter = ["data_kind", "is_open"]
    search_fields = ["name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Rates are set by a new version of the project's reward policy (Rewards > Reward
        # policies): every amount is then traceable to the version that set it. The price is
        # money too: only moderators with payout rights set it.
        fields = [] if obj is None else ["rates"]
        if not request.user.has_perm(PAYOUT_PERMISSION):
            fields.append("price_display")
        if obj is not None and not request.user.has_perm(PROJECT_SETUP_PERMISSION):
            # A payout manager alone: the price, and nothing of how the crowd works.
            fields += [
                f.name
                for f in Project._meta.fields
                if f.editable and not f.primary_key and f.name not in MONEY_FIELDS
            ]
        return fields

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[str]:
        excluded = [] if obj is None else ["reward_per_label", "reward_per_item"]
        if not request.user.has_perm(PAYOUT_PERMISSION):
            # Without payout rights a new project starts at zero rates, set later by a reward
            # policy; the price stays as it is.
            excluded = ["reward_per_label", "reward_per_item", "price"]
        return excluded

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # The form names the asset: its symbol and how many decimals it takes.
        units = {
            "reward_per_label": "Per accepted label, at full weight",
            "reward_per_item": "Per accepted contribution",
            "price": "What a buyer pays for the dataset on-chain; 0: not sold, moderators grant it",
        }
        if db_field.name in units:
            asset = payout_asset()
            kwargs["help_text"] = (
                f"{units[db_field.name]}. In {asset.symbol}, e.g. 12.5 "
                f"(exact to {asset.decimals} decimals)."
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="rates (set by the reward policy)")
    def rates(self, project: Project) -> str:
        asset = payout_asset()
        return (
            f"{asset.format(project.reward_per_label)} per agreeing label at full weight, "
            f"{asset.format(project.reward_per_item)} per accepted contribution"
        )

    @admin.display(description="per label / contribution")
    def rates_short(self, project: Project) -> str:
        asset = payout_asset()
        return (
            f"{asset.format_rounded(project.reward_per_label)} / "
            f"{asset.format_rounded(project.reward_per_item)}"
        )

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        if change and "price" in form.changed_data:
            # Recorded with its time in this transaction: a purchase is held to the price in
            # force when its transfer was mined (market.selectors.dataset_price_at).
            by = request.user if isinstance(request.user, User) else None
            dataset_price_set(project=obj, price=obj.price, by=by)
        super().save_model(request, obj, form, change)

    @admin.display(description="price", ordering="price")
    def price_display(self, project: Project) -> str:
        return "not sold on-chain" if not project.price else payout_asset().format(project.price)


class AnnotationInline(admin.TabularInline[Annotation, Item]):
    """Every label of the item, beside it."""

    model = Annotation
    extra = 0
    can_delete = False
    readonly_fields = ["annotator", "label", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ItemAdminForm(forms.ModelForm[Item]):
    """The one field moderators edit on an item: its gold answer (validated by the service)."""

    class Meta:
        model = Item
        fields = ["gold_label"]

    def clean_gold_label(self) -> str:
        label: str = self.cleaned_data["gold_label"].strip()
        try:
            item_gold_validate(item=self.instance, label=label)
        except AnnotationError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return label

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # A gold answer judges every contributor who meets the item (their gold record, the
        # bonus, probation): setting or clearing one needs a reason in the audit trail.
        if "gold_label" in self.changed_data and not str(cleaned.get(REASON_FIELD, "")).strip():
            self.add_error(
                REASON_FIELD if REASON_FIELD in self.fields else None,
                "Give a reason for changing the gold answer (recorded in the audit trail).",
            )
        return cleaned


@admin.register(Item)
class ItemAdmin(AuditedModelAdmin[Item]):
    form = ItemAdminForm
    list_display = [
        "name",
        "status",
        "label_count",
        "required_labels",
        "decided_label",
        "agreement_display",
        "skip_count",
        "contributor",
    ]
    list_filter = ["status", "project"]
    search_fields = ["id", "content_sha256", "text"]
    list_select_related = ["project", "contributor"]
    inlines = [AnnotationInline]
    # Everything but the gold answer is read-only: status, decision and decision_version decide
    # money (decision_version keys ledger sources: editing it would let a re-decision pay twice).
    readonly_fields = [
        "project",
        "contributor",
        "review_links",
        "text",
        "image_preview",
        "image_format",
        "width",
        "height",
        "size_bytes",
        "content_sha256",
        "status",
        "label_count",
        "required_labels",
        "excluded_labels",
        "decided_label",
        "decision_version",
        "agreement",
        "confidence",
        "decided_at",
        "created_at",
    ]
    actions = ["accept_plurality"]
    change_list_template = "admin/crowdmint/item_change_list.html"

    @admin.display(description="item", ordering="id")
    def name(self, item: Item) -> str:
        return item_name(item)

    @admin.display(description="agreement", ordering="agreement")
    def agreement_display(self, item: Item) -> str:
        return "—" if item.agreement is None else f"{item.agreement:.0%}"

    @admin.display(description="decide")
    def review_links(self, item: Item) -> str:
        """Links to the review decisions' confirmation pages, for an item in review."""
        if item.status != Item.Status.REVIEW:
            return "—"

        def url(action: str) -> str:
            return reverse("admin:labeling_item_review", args=[item.pk, action])

        accept = [
            (f"{url('accept')}?{urlencode({'label': label})}", f"accept as {label}")
            for label in (item.project.classes if item.project.task in LABEL_TASKS else [])
        ]
        links = [*accept, (url("reject"), "reject"), (url("send_back"), "send back")]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description="image")
    def image_preview(self, item: Item) -> str:
        if not item.image:
            return "—"
        url = reverse("admin:labeling_item_image", args=[item.pk])
        return format_html(
            '<a href="{}"><img class="crowdmint-thumb" src="{}?thumb=1" alt=""></a>', url, url
        )

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site

        def image(request: HttpRequest, item_id: int) -> HttpResponseBase:
            return item_image_view(
                self,
                request,
                item_id,
                side=request.GET.get("side", "a"),
                thumbnail=request.GET.get("thumb") == "1",
            )

        def queue(request: HttpRequest) -> HttpResponse:
            return review_queue_view(self, request)

        def review(request: HttpRequest, item_id: int, action: str) -> HttpResponse:
            return review_action_view(self, request, item_id, action)

        return [
            path("review/", site.admin_view(queue), name="labeling_item_review_queue"),
            path(
                "<int:item_id>/review/<str:action>/",
                site.admin_view(review),
                name="labeling_item_review",
            ),
            path("<int:item_id>/image/", site.admin_view(image), name="labeling_item_image"),
            *super().get_urls(),
        ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Items carry labels and credits: they are rejected, never deleted.
        return False

    def save_model(self, request: HttpRequest, obj: Item, form: Any, change: bool) -> None:
        """Only the gold answer is editable; it changes through the audited service."""
        if "gold_label" in form.changed_data:
            item_gold_set(
                item=obj,
                label=form.cleaned_data["gold_label"],
                moderator=request.user,  # type: ignore[arg-type]
                reason=str(form.cleaned_data.get(REASON_FIELD, "")).strip(),
            )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Item]:
        return super().get_queryset(request).annotate(skip_total=Count("skips"))

    @admin.display(description="skips", ordering="skip_total")
    def skip_count(self, item: Item) -> int:
        """Contributors who passed on it: many skips flag an unclear item."""
        return int(getattr(item, "skip_total", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        description="Accept items in review with their most frequent label…",
        permissions=["change"],
    )
    def accept_plurality(
        self, request: HttpRequest, queryset: QuerySet[Item]
    ) -> TemplateResponse | None:
        return accept_plurality_action(self, request, queryset)


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ["id", "item_display", "annotator", "label", "created_at"]
    list_filter = ["item__project"]
    list_select_related = ["item__project", "annotator"]

    @admin.display(description="item", ordering="item")
    def item_display(self, annotation: Annotation) -> str:
        return item_name(annotation.item)


@admin.register(WorkerSkill)
class WorkerSkillAdmin(ReadOnlyAdmin):
    list_display = [
        "user",
        "project",
        "accuracy_display",
        "label_count",
        "gold_answered",
        "gold_correct",
        "updated_at",
    ]
    list_filter = ["project"]
    search_fields = ["user__wallet_address"]
    list_select_related = ["user", "project"]
    ordering = ["accuracy"]

    @admin.display(description="accuracy", ordering="accuracy")
    def accuracy_display(self, skill: WorkerSkill) -> str:
        return f"{skill.accuracy:.1%}"


@admin.register(ConsensusFit)
class ConsensusFitAdmin(ReadOnlyAdmin):
    list_display = [
        "project",
        "method",
        "label_count",
        "iterations",
        "converged",
        "calibration_floor_display",
        "device",
        "seconds_display",
        "fitted_at",
    ]

    list_select_related = ["project"]

    @admin.display(description="calibration floor")
    def calibration_floor_display(self, fit: ConsensusFit) -> str:
        # The floor mixes every posterior with a uniform one, so no item can rise above
        # 1 - floor * (K - 1) / K: few gold items (a cautious floor) can put the project's
        # threshold out of reach, and then every item goes to review at its most labels.
        shown = f"{fit.calibration_floor:.1%}"
        k = len(fit.project.classes) if isinstance(fit.project.classes, list) else 0
        best = 1.0 - fit.calibration_floor * (k - 1) / k if k else 1.0
        if fit.project.task in LABEL_TASKS and best < fit.project.acceptance_threshold:
            return (
                f"{shown}: no item can reach {fit.project.acceptance_threshold:g} "
                f"(at most {best:.3f}) until more gold items are answered"
            )
        return shown

    @admin.display(description="seconds")
    def seconds_display(self, fit: ConsensusFit) -> str:
        return f"{fit.seconds:.2f}"
