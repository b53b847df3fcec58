"""Grandfather the gold bonuses owed back at the upgrade that brought their reversals.

Before this release a gold bonus was never reversed: not when its answer was withdrawn, nor when
its item stopped being gold or its gold answer was corrected. The first sweep after the upgrade
(``gold_bonuses_reverse_owed``) would take back every such bonus at once, however long ago it
was granted and paid. A payments system keeps what it paid under the rules of the time: each
bonus owed back now gets a ``GoldBonusKept`` marker at its item's current gold version, which
the sweep honours. A later change of that item's gold answer (a new version) reverses it like
any other bonus if it is then owed.

Self-contained on purpose (historical models, no application code, which may change): the rule
below is the sweep's ``_gold_bonuses_owed`` as of this release.
"""

from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

MEMO = "granted before gold bonus reversals existed (rewards 0012): kept, not taken back"
CHUNK = 1000


def _answer_id(source: str) -> int:
    """``gold:<answer id>`` (or ``gold:<answer id>:<version>``) -> the answer id."""
    return int(source.split(":")[1])


def bonuses_owed_keep(apps: Any) -> int:
    """Mark every gold bonus owed back now (its answer withdrawn, its item no longer gold, its
    answer no longer the gold answer, or given before the item became gold), not reversed, and
    still paying something after budget cuts, as kept. Returns how many it marked."""
    LedgerEntry = apps.get_model("rewards", "LedgerEntry")
    GoldBonusKept = apps.get_model("rewards", "GoldBonusKept")
    Annotation = apps.get_model("labeling", "Annotation")
    Item = apps.get_model("labeling", "Item")
    marked = 0
    bonuses = (
        LedgerEntry.objects.filter(reason="gold")
        .exclude(pk__in=GoldBonusKept.objects.values("bonus_id"))
        .order_by("id")
    )
    ids = list(bonuses.values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = list(
            bonuses.filter(pk__in=ids[start : start + CHUNK]).values_list(
                "pk", "source", "amount", "item_id"
            )
        )
        answers = {
            pk: (label, created_at)
            for pk, label, created_at in Annotation.objects.filter(
                pk__in=[_answer_id(source) for _, source, _, _ in chunk]
            ).values_list("pk", "label", "created_at")
        }
        items = {
            pk: (gold_label, gold_since, gold_version)
            for pk, gold_label, gold_since, gold_version in Item.objects.filter(
                pk__in={item_id for _, _, _, item_id in chunk}
            ).values_list("pk", "gold_label", "gold_since", "gold_version")
        }
        net = {pk: int(amount) for pk, _, amount, _ in chunk}
        for source, amount in LedgerEntry.objects.filter(
            reason__in=["reversal", "budget"],
            source__in=[f"{kind}:{pk}" for pk in net for kind in ("reversal", "budget")],
        ).values_list("source", "amount"):
            kind, pk = source.split(":")
            net[int(pk)] = 0 if kind == "reversal" else net[int(pk)] + int(amount)
        kept = []
        for pk, source, _, item_id in chunk:
            if net[pk] <= 0:
                continue  # reversed already, or cut to nothing: nothing to take back
            gold_label, gold_since, gold_version = items[item_id]
            answer = answers.get(_answer_id(source))
            owed = (
                answer is None
                or not gold_label
                or answer[0] != gold_label
                or (gold_since is not None and gold_since > answer[1])
            )
            if owed:
                kept.append(GoldBonusKept(bonus_id=pk, gold_version=gold_version, memo=MEMO))
        GoldBonusKept.objects.bulk_create(kept)
        marked += len(kept)
    return marked


def grandfather(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
    bonuses_owed_keep(apps)


def noop(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Going back leaves the markers to the table's removal (0011's reverse)."""


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0011_gold_bonus_kept"),
        ("labeling", "0022_item_gold_version"),
    ]

    operations = [migrations.RunPython(grandfather, noop)]
