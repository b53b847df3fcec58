"""Backfill ``Item.withdrawn_at`` for the records withdrawn before it existed: items accepted
once (a ``Decision`` with a label) and not accepted now were reopened by a recheck, whose own
``Decision`` (no label, the item's latest) says when. Their reason is not recorded anywhere a
migration can read reliably: ``reopened``."""

from typing import Any

from django.db import migrations
from django.db.models import Exists, OuterRef, Subquery


def backfill(apps: Any, schema_editor: Any) -> None:
    Item = apps.get_model("labeling", "Item")
    Decision = apps.get_model("labeling", "Decision")
    latest = Decision.objects.filter(item=OuterRef("pk")).order_by("-version")
    accepted_once = Decision.objects.filter(item=OuterRef("pk")).exclude(label="")
    # Gold ones too: a reopened item is open, and may have been made gold since.
    Item.objects.filter(Exists(accepted_once), withdrawn_at__isnull=True).exclude(
        status="accepted"
    ).update(
        withdrawn_at=Subquery(latest.values("created_at")[:1]),
        withdrawn_reason="reopened",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0019_item_withdrawn"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
