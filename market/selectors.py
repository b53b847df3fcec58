"""Reads for dataset buyers, with the access gates ``<noun>_get_for_<actor>``.

A buyer reads a dataset's records, content and exports only with a live access grant for it
(``DatasetGrant``: given by a moderator, or bought on-chain); moderators read every dataset.
Without a grant the answer is a 403 naming what is missing and how to get it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Avg, BooleanField, Count, Exists, OuterRef, Q, QuerySet, Value
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException

from accounts.permissions import user_is_buyer, user_is_moderator
from labeling.models import Item, Project
from market.models import DatasetExport, DatasetGrant, DatasetPriceChange
from rewards.asset import payout_asset


class GrantRequired(APIException):
    """403: the buyer holds no access grant for the dataset; the body says how to get one."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "grant_required"

    def __init__(self, project: Project) -> None:
        asset = payout_asset()
        treasury = settings.DATASET_TREASURY_ADDRESS
        if project.price and treasury:
            how = (
                f"buy it: transfer {asset.format(project.price)} ({project.price} base units) "
                f"to {treasury}, then POST /api/v1/datasets/{project.pk}/purchase with "
                '{"tx_hash": "0x..."}; or ask a moderator for a grant'
            )
        else:
            how = "it is not sold on-chain: ask a moderator for a grant"
        # Kept as given (APIException would turn every value into a string).
        body: dict[str, Any] = {
            "detail": f"you hold no access grant for dataset {project.pk} "
            f"({project.name!r}): {how}",
            "missing": "grant",
            "dataset": project.pk,
            "price": str(project.price),
            "treasury": treasury or None,
        }
        self.detail = body


def grant_live_exists(*, project: Project, user: Any) -> bool:
    return DatasetGrant.objects.filter(
        project=project, buyer=user, revoked_at__isnull=True
    ).exists()


def dataset_readable_by_buyer(*, project: Project, user: Any) -> bool:
    """Whether ``user`` may read the dataset's records, content and exports: one rule a line."""
    if user_is_moderator(user):
        return True
    if not user_is_buyer(user):
        return False
    return grant_live_exists(project=project, user=user)


def dataset_list_for_buyer(*, user: Any) -> QuerySet[Project]:
    """Every dataset (closed projects too), with ``granted`` for ``user``, counts and quality;
    a constant number of queries whatever the count."""
    accepted = Q(items__status=Item.Status.ACCEPTED, items__gold_label="")
    if user_is_moderator(user):
        granted: Any = Value(True, output_field=BooleanField())
    else:
        granted = Exists(
            DatasetGrant.objects.filter(project=OuterRef("pk"), buyer=user, revoked_at__isnull=True)
        )
    return (
        Project.objects.select_related("consensus_fit")
        .annotate(
            accepted_count=Count("items", filter=accepted),
            item_count=Count("items"),
            mean_posterior=Avg("items__confidence", filter=accepted),
            granted=granted,
        )
        .order_by("id")
    )


def dataset_get_for_buyer(*, dataset_id: int, user: Any) -> Project:
    """A dataset ``user`` may read. Raises Http404 for no such dataset, ``GrantRequired``
    (403) without a grant; a closed project stays readable by those who hold one."""
    project = dataset_get(dataset_id=dataset_id)
    if not dataset_readable_by_buyer(project=project, user=user):
        raise GrantRequired(project)
    return project


def dataset_get(*, dataset_id: int) -> Project:
    """Any dataset, for its listing and purchase (what is for sale is public to buyers)."""
    project = Project.objects.filter(pk=dataset_id).first()
    if project is None:
        raise Http404("No dataset with this id.")
    return project


def export_get_for_buyer(*, export_id: int, user: Any) -> DatasetExport:
    """One of ``user``'s exports (a moderator: anyone's). Someone else's export is the same 404
    as a missing one; an export whose grant was revoked since is a 403."""
    export = DatasetExport.objects.select_related("project").filter(pk=export_id).first()
    if export is None:
        raise Http404("No export with this id.")
    if not user_is_moderator(user) and export.buyer_id != user.pk:
        raise Http404("No export with this id.")
    if not dataset_readable_by_buyer(project=export.project, user=user):
        raise GrantRequired(export.project)
    return export


def exports_for_buyer(
    *, user: Any, project: Project | None = None, limit: int = 50
) -> QuerySet[DatasetExport]:
    """The buyer's last ``limit`` exports (of ``project`` only, if given), newest first."""
    exports = DatasetExport.objects.filter(buyer=user)
    if project is not None:
        exports = exports.filter(project=project)
    return exports.select_related("project").order_by("-id")[:limit]


def dataset_price_at(*, project: Project, at: datetime) -> int:
    """The price ``project`` had at ``at`` (base units): the price the first recorded change
    after ``at`` replaced (``DatasetPriceChange.previous_price``), or the current price if none
    was changed since. One query."""
    first_after = (
        DatasetPriceChange.objects.filter(project=project, changed_at__gt=at)
        .order_by("changed_at", "id")
        .values_list("previous_price", flat=True)
        .first()
    )
    return int(project.price if first_after is None else first_after)
