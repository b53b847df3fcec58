"""The review queue in admin: items waiting for a moderator with their content and every label,
and the three decisions on each (accept with a chosen label, reject, send back), each behind a
confirmation page that names what it will do and who it will credit, and asks for a reason.

Images reach moderators through ``item_image_view``, a staff-only view that streams the stored
file (MEDIA_ROOT is not served: uploads are private).
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from PIL import Image

from accounts.admin_audit import changelist_action_fields
from accounts.models import User
from labeling.answers import agrees
from labeling.models import Item, Project
from labeling.services import AnnotationError
from labeling.services.decisions import decided_value_of
from labeling.services.review import (
    LABEL_TASKS,
    item_reject,
    item_review_accept,
    item_send_back,
)
from moderation.backoffice import review_queue
from moderation.selectors import users_excluded_from_consensus
from rewards.asset import payout_asset
from rewards.models import RewardPolicy

PAGE_SIZE = 25
EXCERPT = 600
THUMBNAIL = 320  # pixels, the longest side of a review queue thumbnail
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def item_name(item: Item) -> str:
    """How moderators name an item: its project and id ("Sentiment #13")."""
    return f"{item.project.name} #{item.pk}"


def excerpt(text: str, limit: int = EXCERPT) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _may_review(model_admin: ModelAdmin[Any], request: HttpRequest) -> None:
    if not model_admin.has_change_permission(request):
        raise PermissionDenied


def _thumbnail(stored: Any) -> bytes:
    """A PNG at most ``THUMBNAIL`` pixels on its longest side (stored images were validated at
    upload, and Pillow's decompression-bomb limit still applies)."""
    with stored.open("rb") as handle, Image.open(handle) as image:
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        out = io.BytesIO()
        image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(out, "PNG")
    return out.getvalue()


def item_image_view(
    model_admin: ModelAdmin[Any],
    request: HttpRequest,
    item_id: int,
    side: str = "a",
    thumbnail: bool = False,
) -> HttpResponseBase:
    """The stored image of an item (``thumbnail``: scaled down, as PNG), for staff who may view
    items (``admin_view`` already refused anyone else); 404 for an item without that image."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    field, fmt_field = ("image_b", "image_b_format") if side == "b" else ("image", "image_format")
    item = Item.objects.filter(pk=item_id).exclude(**{field: ""}).first()
    if item is None:
        raise Http404("No image item with this id.")
    response: HttpResponseBase
    if thumbnail:
        response = HttpResponse(_thumbnail(getattr(item, field)), content_type="image/png")
    else:
        content_type = CONTENT_TYPES.get(getattr(item, fmt_field), "application/octet-stream")
        response = FileResponse(getattr(item, field).open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@dataclass(frozen=True)
class QueueRow:
    item: Item
    name: str
    text: str
    text_b: str
    labels: list[tuple[str, str]]  # (labeler, answer)
    choices: list[str]  # labels a moderator may accept it with; empty for set tasks


def review_queue_view(model_admin: ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    _may_review(model_admin, request)
    page = Paginator(review_queue(), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        QueueRow(
            item=item,
            name=item_name(item),
            text=excerpt(item.text),
            text_b=excerpt(item.text_b),
            labels=[(str(a.annotator), a.label) for a in item.annotations.all()],
            choices=list(item.project.classes) if item.project.task in LABEL_TASKS else [],
        )
        for item in page.object_list
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Review queue",
        "page": page,
        "rows": rows,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/crowdmint/review_queue.html", context)


class ReviewForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=500,
        help_text="Recorded in the audit trail with your name.",
    )


def _left_out(item: Item) -> list[str]:
    """The labels a decision would leave out (banned or flagged labelers), in words."""
    annotations = list(item.annotations.select_related("annotator").order_by("id"))
    excluded = users_excluded_from_consensus(
        project=item.project, user_ids={a.annotator_id for a in annotations}
    )
    return [
        f"{a.annotator}'s label {a.label!r} is left out and unpaid: banned or flagged."
        for a in annotations
        if a.annotator_id in excluded
    ]


def _credits_if_accepted(item: Item, label: str) -> list[str]:
    """Who accepting ``item`` with ``label`` credits, as the decision would (the answers that
    agree, per the task) and at the current reward policy's base rates."""
    project: Project = item.project
    # Read, never made here (a GET must not write): the credit makes version 1 if none exists.
    policy = RewardPolicy.objects.filter(project=project).order_by("-version").first()
    per_item = int(policy.per_item) if policy else int(project.reward_per_item)
    per_label = int(policy.per_label) if policy else int(project.reward_per_label)
    version = f"v{policy.version}" if policy else "v1"
    asset = payout_asset()
    decided = decided_value_of(item, label, None)
    lines: list[str] = []
    if item.contributor is not None and per_item > 0:
        lines.append(
            f"the uploader {item.contributor}: {asset.format(per_item)} "
            "for the accepted contribution (once, on its first acceptance)"
        )
    annotations = list(item.annotations.select_related("annotator").order_by("id"))
    # As the decision will: a banned or flagged labeler's answer is neither counted nor paid.
    excluded = users_excluded_from_consensus(
        project=project, user_ids={a.annotator_id for a in annotations}
    )
    if per_label > 0:
        for annotation in annotations:
            if annotation.annotator_id in excluded:
                continue
            answer = annotation.value or decided_value_of(item, annotation.label, None)
            if agrees(project.task, answer, decided, project.agreement_threshold):
                lines.append(
                    f"{annotation.annotator}, who labeled it {annotation.label!r}: up to "
                    f"{asset.format(per_label)} (reward policy {version}, which may weight it "
                    "by the labeler's skill)"
                )
    return lines


ACTIONS = {
    "accept": "Accept",
    "reject": "Reject",
    "send_back": "Send back",
}


def review_action_view(
    model_admin: ModelAdmin[Any], request: HttpRequest, item_id: int, action: str
) -> HttpResponse:
    """GET: the confirmation page; POST with a reason: apply it through the review service."""
    _may_review(model_admin, request)
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    if action not in ACTIONS:
        raise Http404("No such review action.")
    item = Item.objects.select_related("project", "contributor").filter(pk=item_id).first()
    if item is None:
        raise Http404("No item with this id.")
    queue_url = reverse("admin:labeling_item_review_queue")
    label = str(request.POST.get("label") or request.GET.get("label") or "")
    if action == "accept" and label not in item.project.classes:
        messages.error(request, f"{item_name(item)}: choose one of its project's classes.")
        return redirect(queue_url)
    form = ReviewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        moderator = request.user
        assert isinstance(moderator, User)
        reason = form.cleaned_data["reason"]
        try:
            if action == "accept":
                item_review_accept(item=item, label=label, moderator=moderator, reason=reason)
                done = f"accepted as {label!r}; its credits are written once, now"
            elif action == "reject":
                item_reject(item=item, moderator=moderator, reason=reason)
                done = "rejected"
            else:
                item_send_back(item=item, moderator=moderator, reason=reason)
                done = "sent back for one more label"
        except AnnotationError as exc:
            messages.error(request, f"{item_name(item)}: {exc}")
        else:
            messages.success(request, f"{item_name(item)} {done}.")
        return redirect(queue_url)
    if action == "accept":
        effect = f"accept {item_name(item)} with the label {label!r} (a moderator's decision)."
        credits = _credits_if_accepted(item, label)
        notes = [
            *_left_out(item),
            "Labels that disagree earn nothing; nothing is paid until the next settlement.",
        ]
    elif action == "reject":
        effect = f"reject {item_name(item)}: it is no longer served, decided or sold."
        credits = []
        notes = ["Neither the uploader nor its labelers are paid for it."]
    else:
        effect = (
            f"send {item_name(item)} back to the crowd for one more label "
            f"({item.label_count} so far); the crowd's decision then follows the usual rules."
        )
        credits = []
        notes = ["The labelers who agree with the crowd's eventual decision are paid then."]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{ACTIONS[action]} {item_name(item)}",
        "effect": effect,
        "targets": [
            f"{annotation.annotator}: {annotation.label}"
            for annotation in item.annotations.select_related("annotator").order_by("id")
        ],
        "credits": credits,
        "notes": notes,
        "form": form,
        "hidden": [("label", label)] if action == "accept" else [],
        "submit": f"Yes, {ACTIONS[action].lower()} it",
        "back_url": queue_url,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/crowdmint/confirm.html", context)


def accept_plurality_action(
    model_admin: ModelAdmin[Any], request: HttpRequest, queryset: Any
) -> TemplateResponse | None:
    """The bulk action: accept each selected item in review with its most frequent label among
    the answers its decision counts (banned and flagged labelers' left out, as the decision
    leaves them out), after a confirmation page listing each item, its label, who it credits and
    whose labels it leaves out, with one reason. A tie is left for a moderator to pick."""
    selected = list(queryset.values_list("pk", flat=True))
    plan: list[tuple[Item, str]] = []
    left_out: list[str] = []
    tied: list[str] = []
    for item in review_queue().filter(pk__in=selected):
        if item.project.task not in LABEL_TASKS:
            continue
        annotations = list(item.annotations.all())
        # As the decision itself counts them: a banned or flagged labeler's answer isn't a vote.
        excluded = users_excluded_from_consensus(
            project=item.project, user_ids={a.annotator_id for a in annotations}
        )
        counts = Counter(
            a.label for a in annotations if a.annotator_id not in excluded
        ).most_common(2)
        if not counts:
            continue
        if len(counts) == 2 and counts[0][1] == counts[1][1]:
            tied.append(item_name(item))  # no most frequent label: a moderator picks one
            continue
        plan.append((item, counts[0][0]))
        left_out += [f"{item_name(item)}: {line}" for line in _left_out(item)]
    form = ReviewForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        moderator = request.user
        assert isinstance(moderator, User)
        done = 0
        for item, label in plan:
            try:
                item_review_accept(
                    item=item, label=label, moderator=moderator, reason=form.cleaned_data["reason"]
                )
            except AnnotationError as exc:
                messages.warning(request, f"{item_name(item)}: {exc}")
                continue
            done += 1
        messages.success(request, f"Accepted {done} item(s).")
        return None
    skipped = len(selected) - len(plan) - len(tied)
    notes = left_out + (
        [
            f"{', '.join(tied)}: left alone, no label is the most frequent (a tie): accept one "
            "from its review page."
        ]
        if tied
        else []
    )
    if skipped:
        notes.append(
            f"{skipped} selected item(s) are left alone: not in review, without a counted label, "
            "or of a task whose answer isn't one class."
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Accept with the most frequent label",
        "effect": f"accept {len(plan)} item(s) in review, each with its most frequent label.",
        "targets": [f"{item_name(item)} → {label!r}" for item, label in plan],
        "credits": [
            f"{item_name(item)}: {line}"
            for item, label in plan
            for line in _credits_if_accepted(item, label)
        ],
        "notes": notes,
        "form": form,
        "hidden": changelist_action_fields(request),
        "submit": "Yes, accept them",
        "back_url": reverse("admin:labeling_item_changelist"),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/crowdmint/confirm.html", context)
