"""A dataset's price: every change recorded with its time, so a purchase is held to the price in
force when its transfer was mined (``market.selectors.dataset_price_at``)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from labeling.models import Project
from market.models import DatasetPriceChange


def dataset_price_set(
    *, project: Project, price: int, by: User | None
) -> DatasetPriceChange | None:
    """Set ``project``'s price (base units of the payout asset) and record the change, with its
    time and author, in the same transaction; None (nothing written) if the price is unchanged.
    ``project.price`` is updated in place. Raises ValueError for a negative price.

    The row is locked while the old price is read: two changes racing record each other's
    prices as their ``previous_price``, never the same one twice.
    """
    price = int(price)
    if price < 0:
        raise ValueError(f"a price is 0 (not sold on-chain) or more, not {price}")
    with transaction.atomic():
        previous = (
            Project.objects.select_for_update().values_list("price", flat=True).get(pk=project.pk)
        )
        project.price = price
        if int(previous) == price:
            return None
        Project.objects.filter(pk=project.pk).update(price=price)
        return DatasetPriceChange.objects.create(
            project=project,
            previous_price=previous,
            price=price,
            changed_at=timezone.now(),
            changed_by=by,
        )
