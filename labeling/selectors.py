"""Reads of the labeling pipeline, with the access gates ``<noun>_get_for_<actor>``."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.permissions import user_is_buyer, user_is_contributor, user_is_moderator
from labeling.models import Annotation, Assignment, Item, Project, WorkerSkill
from market.selectors import dataset_readable_by_buyer


def project_list_open() -> QuerySet[Project]:
    return Project.objects.filter(is_open=True).order_by("id")


def project_get_open(*, project_id: int) -> Project:
    project = Project.objects.filter(pk=project_id, is_open=True).first()
    if project is None:
        raise Http404("No open project with this id.")
    return project


def item_get_for_contributor(*, item_id: int) -> Item:
    """An item of an open project, which any contributor may see and label."""
    item = Item.objects.select_related("project").filter(pk=item_id, project__is_open=True).first()
    if item is None:
        raise Http404("No item with this id in an open project.")
    return item


def contributors_able_to_label() -> QuerySet[User]:
    """Accounts that may label today: contributors with a wallet, active and not banned (the
    conditions of ``accounts.permissions.user_is_contributor``)."""
    return (
        User.objects.filter(role=User.Role.CONTRIBUTOR, is_active=True, banned_at__isnull=True)
        .exclude(wallet_address__isnull=True)
        .exclude(wallet_address="")
    )


def item_labelers_left(*, item: Item) -> int:
    """How many contributors could still give ``item`` a label: able to label, not its uploader,
    and neither labeled nor skipped it."""
    able = contributors_able_to_label()
    if item.contributor_id is not None:
        able = able.exclude(pk=item.contributor_id)
    return able.exclude(annotations__item=item).exclude(skips__item=item).count()


def worker_skills_for_user(*, user: User) -> QuerySet[WorkerSkill]:
    """A contributor's estimated accuracy per project, from the last consensus fits."""
    return WorkerSkill.objects.filter(user=user).select_related("project").order_by("project_id")


def _item_content_allowed(item: Item, user: Any) -> bool:
    """Who may see an item's content: one rule per line."""
    if user_is_moderator(user):
        return True
    if user_is_contributor(user) and item.contributor_id == user.pk:
        return True
    if user_is_contributor(user) and item_is_assigned_to(item=item, user=user):
        return True
    if user_is_buyer(user) and item.status == Item.Status.ACCEPTED and not item.gold_label:
        return dataset_readable_by_buyer(project=item.project, user=user)  # a grant
    return False


def item_is_assigned_to(*, item: Item, user: User) -> bool:
    """Whether ``item`` is leased to ``user`` right now, or they answered it (their history)."""
    live = Assignment.objects.filter(
        item=item,
        user=user,
        answered_at__isnull=True,
        released_at__isnull=True,
        expires_at__gt=timezone.now(),
    )
    return live.exists() or Annotation.objects.filter(item=item, annotator=user).exists()


def item_get_content_for_user(*, item_id: int, user: Any, side: str = "a") -> Item:
    """An image item whose bytes ``user`` may download: its uploader, a contributor it is served
    to right now, a moderator, or a buyer of its dataset once it is accepted. Anyone else gets
    the same 404 as for a missing item (ids are sequential: no hint that it exists)."""
    field = "image_b" if side == "b" else "image"  # a pair's second image: side "b"
    item = Item.objects.select_related("project").filter(pk=item_id).exclude(**{field: ""}).first()
    if item is None or not _item_content_allowed(item, user):
        if side == "b":  # the same for any item: no hint that it exists
            raise Http404("No pair of images with this id (side=b is a pairwise item's second).")
        raise Http404("No image item with this id.")
    return item


def labels_recent_for_user(
    *, user: User, project_id: int | None = None, limit: int = 20
) -> list[Annotation]:
    """A contributor's latest answers, newest first, with their items."""
    rows = Annotation.objects.filter(annotator=user).select_related("item")
    if project_id is not None:
        rows = rows.filter(item__project_id=project_id)
    return list(rows.order_by("-id")[:limit])


def progress_for_contributor(*, project: Project, user: User) -> dict[str, int]:
    """How far along a contributor is in a project (the labeling page's header)."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Annotation.objects.filter(annotator=user, item__project=project)
    open_items = Item.objects.filter(project=project, status=Item.Status.OPEN)
    left = (
        open_items.exclude(contributor=user)
        .exclude(annotations__annotator=user)
        .exclude(skips__user=user)
        .filter(Q(gold_label__gt="") | Q(label_count__lt=F("required_labels")))
        .count()
    )
    return {
        "left": left,
        "open": open_items.count(),
        "labeled_today": mine.filter(created_at__gte=midnight).count(),
        "labeled": mine.count(),
    }


def items_uploaded_by_user(
    *, user: User, project_id: int | None = None, limit: int = 50
) -> list[Item]:
    """A contributor's own uploads, newest first, with their projects (the upload page's list)."""
    rows = Item.objects.filter(contributor=user).select_related("project")
    if project_id is not None:
        rows = rows.filter(project_id=project_id)
    return list(rows.order_by("-id")[:limit])


def upload_state(item: Item) -> str:
    """Where an upload stands, in the contributor's words: ``waiting`` (no label yet),
    ``labeling`` (labels coming in, or a moderator's review), ``accepted`` or ``rejected``."""
    if item.status == Item.Status.ACCEPTED:
        return "accepted"
    if item.status == Item.Status.REJECTED:
        return "rejected"
    if item.status == Item.Status.OPEN and item.label_count == 0:
        return "waiting"
    return "labeling"
