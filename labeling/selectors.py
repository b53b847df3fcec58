"""Reads of the labeling pipeline, with the access gates ``<noun>_get_for_<actor>``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet
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


def item_next_for_contributor(*, project: Project, user: User) -> Item | None:
    """The next item this contributor may label: open, not theirs, not labeled or skipped by them.

    One task in ``GOLD_EVERY`` (the first one included) is a gold item with a known answer, while
    the contributor has gold items left, so skills are anchored. Otherwise items closest to a
    decision come first, so labels finish items instead of spreading thin.
    """
    candidates = (
        Item.objects.select_related("project")
        .filter(project=project, status=Item.Status.OPEN)
        .exclude(contributor=user)
        .exclude(annotations__annotator=user)
        .exclude(skips__user=user)
    )
    done = Annotation.objects.filter(annotator=user, item__project=project).aggregate(
        total=Count("id"), gold=Count("id", filter=~Q(item__gold_label=""))
    )
    if done["gold"] * settings.GOLD_EVERY <= done["total"]:
        gold = candidates.exclude(gold_label="").order_by("id").first()
        if gold is not None:
            return gold
    return (
        candidates.filter(gold_label="", label_count__lt=F("required_labels"))
        .order_by("-label_count", "id")
        .first()
    )


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
    """Whether ``next-task`` served ``item`` to ``user`` and that has not expired."""
    return Assignment.objects.filter(item=item, user=user, expires_at__gt=timezone.now()).exists()


def item_get_content_for_user(*, item_id: int, user: Any, side: str = "a") -> Item:
    """An image item whose bytes ``user`` may download: its uploader, a contributor it is served
    to right now, a moderator, or a buyer of its dataset once it is accepted. Anyone else gets
    the same 404 as for a missing item (ids are sequential: no hint that it exists)."""
    field = "image_b" if side == "b" else "image"  # a pair's second image: side "b"
    item = Item.objects.select_related("project").filter(pk=item_id).exclude(**{field: ""}).first()
    if item is None or not _item_content_allowed(item, user):
        raise Http404("No image item with this id.")
    return item
