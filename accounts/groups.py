"""The back office's two groups of staff and what each may do in admin.

- **moderators**: run the crowd: read everything, decide items (review queue, gold answers),
  flags and bans, give dataset grants and API keys. No payout rights: they can't approve, hold or
  settle payout batches, change reward policies, the approval threshold or a dataset's price.
- **payout managers**: the payout rights (``rewards.approve_payoutbatch``), new reward policy
  versions, the approval threshold, and project prices: their ``labeling.change_project`` is for
  the price alone (a project's other fields need ``labeling.add_project``, the moderators', see
  ``labeling.admin.ProjectAdmin``). Give a person both groups to do both.

``admin_groups_ensure`` makes (or brings up to date) both groups; ``manage.py admin_groups`` and
the demo run it. Re-running it adds missing permissions and removes ones no longer listed.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

MODERATORS = "moderators"
PAYOUT_MANAGERS = "payout managers"

_VIEW_ALL_APPS = ("accounts", "labeling", "market", "moderation", "rewards")

GROUP_PERMISSIONS: dict[str, list[str]] = {
    MODERATORS: [
        "accounts.change_user",
        "accounts.add_accesstoken",
        "accounts.change_accesstoken",
        "labeling.add_project",
        "labeling.change_project",
        "labeling.change_item",
        "market.add_datasetgrant",
        "market.change_datasetgrant",
        "market.add_itemimport",
        "market.change_itemimport",
        "moderation.change_flag",
    ],
    PAYOUT_MANAGERS: [
        "rewards.approve_payoutbatch",
        "rewards.add_rewardpolicy",
        "rewards.change_payoutsettings",
        "labeling.change_project",
    ],
}


def _permissions(names: list[str]) -> list[Permission]:
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query).select_related("content_type"))
    missing = set(names) - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:
        raise LookupError(f"unknown permissions (run migrate first): {', '.join(sorted(missing))}")
    return found


def admin_groups_ensure() -> dict[str, int]:
    """Create or update the moderators and payout managers groups; returns each one's number of
    permissions. Raises ``LookupError`` if a listed permission doesn't exist (not migrated)."""
    views = list(
        Permission.objects.filter(
            content_type__app_label__in=_VIEW_ALL_APPS, codename__startswith="view_"
        )
    )
    sizes: dict[str, int] = {}
    with transaction.atomic():
        for name, listed in GROUP_PERMISSIONS.items():
            group, _ = Group.objects.get_or_create(name=name)
            permissions = {*views, *_permissions(listed)}
            group.permissions.set(permissions)
            sizes[name] = len(permissions)
    return sizes
