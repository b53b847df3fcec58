"""Money movements: credits into the ledger, and settlement of credits on-chain.

Exactly-once rests on three facts, not on exception handling:
1. a credit is unique per ``(reason, source)`` (a database constraint);
2. a credit sits in at most one live batch (a one-to-one allocation);
3. the token contract refuses a ``batchId`` it has already processed.
So settlement can crash anywhere, and be re-run any number of times, concurrently too: it re-reads
the chain (``processedBatches``) to learn what happened, and never pays a batch twice.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, StrIndex, Substr
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from config.locks import transaction_lock
from labeling.models import Annotation, Decision, Item, Project, gold_answers
from moderation.selectors import users_held, users_on_probation
from rewards.approval import batch_may_be_sent, batch_needs_approval
from rewards.asset import payout_asset
from rewards.chain import MINT, ChainClient, ChainError, Receipt, SignedTransaction, max_batch_size
from rewards.failpoints import failpoint
from rewards.fields import MAX_AMOUNT
from rewards.models import (
    DecisionCredit,
    EpochClose,
    GoldBonusKept,
    LedgerEntry,
    PayoutAllocation,
    PayoutBatch,
    PayoutSettings,
    PayoutTransfer,
    RewardPolicy,
)
from rewards.policy import Reward, budget_scale, contribution_reward, gold_reward, label_reward
from rewards.receipts import batch_receipts
from rewards.selectors import reward_policy_in_force

logger = logging.getLogger(__name__)


def label_credit_source(annotation_id: int, decision_version: int) -> str:
    """The ledger source of a label credit under an item's n-th decision (``annotation:<id>``
    for the first, ``annotation:<id>@<n>`` after a re-decision)."""
    if decision_version <= 1:
        return f"annotation:{annotation_id}"
    return f"annotation:{annotation_id}@{decision_version}"


def reward_epoch(at: datetime) -> int:
    """The budget epoch ``at`` falls in: whole ``REWARD_EPOCH_HOURS`` since 1970 (UTC)."""
    return int(at.timestamp()) // (settings.REWARD_EPOCH_HOURS * 3600)


def _ledger_credit_lock(project_ids: Iterable[int]) -> None:
    """Hold the ledger lock of each of ``project_ids`` shared until the transaction ends: call it
    first in a transaction that writes credits, before its row locks and before it picks the
    credits' epoch (``_epoch_open``). An epoch's close holds the same lock exclusively
    (``_close_epoch``), so a credit written while an epoch closes waits for the close and then
    lands in an open epoch, or the close waits for it and counts it: never a credit in a closed
    epoch that its totals missed. (SQLite's IMMEDIATE transactions already run one at a time.)
    Keys in id order, so two writers never wait for each other."""
    for project_id in sorted(set(project_ids)):
        transaction_lock("ledger-epoch", project_id, shared=True)


def _epoch_open(project_id: int, at: datetime) -> int:
    """The epoch a credit written at ``at`` lands in: ``at``'s, or if that one is closed already
    (this process's clock behind the one that closed it), the first later one still open."""
    epoch = reward_epoch(at)
    closed = set(
        EpochClose.objects.filter(project_id=project_id, epoch__gte=epoch).values_list(
            "epoch", flat=True
        )
    )
    while epoch in closed:
        epoch += 1
    return epoch


def reward_policy_current(*, project: Project) -> RewardPolicy:
    """The project's latest reward policy; the first use makes version 1 from the project's
    rates (with posterior and skill weighting)."""
    policy = RewardPolicy.objects.filter(project=project).order_by("-version").first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return RewardPolicy.objects.create(
                project=project,
                version=1,
                per_label=project.reward_per_label,
                per_item=project.reward_per_item,
                note="the project's rates when it was first credited",
            )
    except IntegrityError:
        # Another process made version 1 first.
        return RewardPolicy.objects.get(project=project, version=1)


POLICY_FIELDS = (
    "per_label",
    "per_item",
    "gold_bonus",
    "weight_by_posterior",
    "weight_by_skill",
    "epoch_budget",
)


def reward_policy_update(
    *, project: Project, changes: dict[str, object], moderator: User, note: str
) -> RewardPolicy:
    """A new version of the project's reward policy: the current one with ``changes``.

    The project's displayed rates follow it; the change is audited. Entries already credited
    keep the version they were made under. Raises ``ValueError`` for an unknown field or a
    negative amount or one above ``MAX_AMOUNT``.
    """
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"not reward policy fields: {', '.join(sorted(unknown))}")
    for name in ("per_label", "per_item", "gold_bonus", "epoch_budget"):
        value = changes.get(name)
        if value is not None and int(value) < 0:  # type: ignore[call-overload]
            raise ValueError(f"{name} can't be negative")
        if value is not None and int(value) > MAX_AMOUNT:  # type: ignore[call-overload]
            raise ValueError(f"{name} can be at most {MAX_AMOUNT} base units")
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)  # one new version at a time
        current = reward_policy_current(project=project)
        values = {name: getattr(current, name) for name in POLICY_FIELDS} | changes
        policy = RewardPolicy.objects.create(
            project=project,
            version=current.version + 1,
            note=note[:500],
            created_by=moderator,
            **values,
        )
        Project.objects.filter(pk=project.pk).update(
            reward_per_label=policy.per_label, reward_per_item=policy.per_item
        )
        audit_record(
            actor=moderator,
            action="reward_policy.update",
            target=policy,
            details={
                "project": project.pk,
                "version": policy.version,
                "changes": {k: None if v is None else str(v) for k, v in changes.items()},
                "note": note,
            },
        )
    return policy


def _entry(
    *,
    user_id: int,
    reason: str,
    source: str,
    reward: Reward,
    policy: RewardPolicy,
    item: Item | None,
    epoch: int,
    memo: str = "",
) -> LedgerEntry:
    return LedgerEntry(
        user_id=user_id,
        amount=reward.amount,
        reason=reason,
        source=source,
        project_id=policy.project_id,
        item=item,
        memo=memo,
        policy_version=policy.version,
        policy_inputs=reward.inputs,
        epoch=epoch,
    )


def _net_of(credits: list[LedgerEntry]) -> dict[int, int]:
    """What each credit still pays: its amount net of the budget reductions taken from it and
    of its reversal (a reversed credit pays 0)."""
    net = {credit.pk: int(credit.amount) for credit in credits}
    sources = {f"budget:{credit.pk}": credit.pk for credit in credits} | {
        f"reversal:{credit.pk}": credit.pk for credit in credits
    }
    for source, amount in LedgerEntry.objects.filter(
        reason__in=[LedgerEntry.Reason.BUDGET, LedgerEntry.Reason.REVERSAL],
        source__in=list(sources),
    ).values_list("source", "amount"):
        net[sources[source]] += int(amount)
    return net


def _reverse_label_credits(item: Item, versions: list[int], epoch: int) -> int:
    """Cancel the label credits of an item's decisions ``versions`` with reversal entries (each
    credit's net, after any budget reduction; one already reversed is left alone). The credits
    must be unpaid and locked."""
    annotation_ids = list(item.annotations.values_list("pk", flat=True))
    sources = [label_credit_source(pk, version) for pk in annotation_ids for version in versions]
    credits = list(
        LedgerEntry.objects.select_for_update()
        .filter(reason=LedgerEntry.Reason.LABEL, source__in=sources)
        .order_by("id")
    )
    net = _net_of(credits)
    LedgerEntry.objects.bulk_create(
        [
            _reversal(credit, net[credit.pk], epoch, f"item {item.pk} re-decided")
            for credit in credits
            if net[credit.pk] > 0
        ],
        ignore_conflicts=True,
    )
    return len(credits)


def _contribution_standing(item: Item) -> tuple[LedgerEntry, bool] | None:
    """The item's latest contribution credit and whether it still stands (not reversed)."""
    credit = (
        LedgerEntry.objects.filter(item=item, reason=LedgerEntry.Reason.CONTRIBUTION)
        .order_by("-id")
        .first()
    )
    if credit is None:
        return None
    reversed_ = LedgerEntry.objects.filter(
        reason=LedgerEntry.Reason.REVERSAL, source=f"reversal:{credit.pk}"
    ).exists()
    return credit, not reversed_


def _reversal(credit: LedgerEntry, net: int, epoch: int, memo: str) -> LedgerEntry:
    """The entry cancelling ``credit``: its ``net`` (after budget reductions) taken back."""
    return LedgerEntry(
        user_id=credit.user_id,
        amount=-net,
        reason=LedgerEntry.Reason.REVERSAL,
        source=f"reversal:{credit.pk}",
        project_id=credit.project_id,
        item_id=credit.item_id,
        memo=memo,
        policy_version=credit.policy_version,
        policy_inputs={"reverses": credit.pk},
        epoch=epoch,
    )


def gold_answer_reverse(*, annotation_id: int) -> bool:
    """Cancel the gold bonus of a withdrawn answer (eager Celery credits it at once, before the
    undo window ends); nothing if the answer still exists or had no bonus. Once: a reversal's
    source is unique. Returns whether it wrote a reversal."""
    with transaction.atomic():
        if Annotation.objects.filter(pk=annotation_id).exists():
            return False
        credits = list(
            LedgerEntry.objects.select_for_update()
            .filter(_gold_sources_q(annotation_id), reason=LedgerEntry.Reason.GOLD)
            .order_by("id")
        )
        net = _net_of(credits)
        epoch = reward_epoch(timezone.now())
        # The credits' row locks order concurrent calls, so a reversal that exists is seen here
        # (bulk_create's ignore_conflicts sets no pk on SQLite: it can't say what it wrote).
        owed = [
            _reversal(credit, net[credit.pk], epoch, "gold answer withdrawn")
            for credit in credits
            if net[credit.pk] > 0
        ]
        written = set(
            LedgerEntry.objects.filter(source__in=[entry.source for entry in owed]).values_list(
                "source", flat=True
            )
        )
        owed = [entry for entry in owed if entry.source not in written]
        LedgerEntry.objects.bulk_create(owed, ignore_conflicts=True)
    return bool(owed)


#: How many owed bonus reversals the sweep writes per transaction.
_GOLD_REVERSAL_CHUNK = 500


def gold_bonus_source(annotation_id: int, gold_version: int) -> str:
    """The ledger source of an answer's gold bonus under its item's ``gold_version``:
    ``gold:<answer id>`` for version 0 (every bonus before versions existed), then
    ``gold:<answer id>:<version>``. Unique: an answer is paid at most once per gold state, so
    a gold answer corrected by mistake and back pays again (its first bonus was reversed)."""
    if gold_version == 0:
        return f"gold:{annotation_id}"
    return f"gold:{annotation_id}:{gold_version}"


def _gold_sources_q(annotation_id: int) -> Q:
    """The condition on a gold credit's source that it is ``annotation_id``'s, any version."""
    return Q(source=f"gold:{annotation_id}") | Q(source__startswith=f"gold:{annotation_id}:")


def _gold_answer_id() -> Case:
    """A gold credit's answer id, parsed from its source (``gold_bonus_source``): the digits
    after ``gold:`` up to the next ``:``, if any."""
    rest = Concat(Substr("source", 6), Value(":"), output_field=CharField())
    digits = Cast(Substr(rest, 1, StrIndex(rest, Value(":")) - 1), BigIntegerField())
    # Only a gold credit's source is cast: a filter on the reason alone leaves the order of the
    # conditions to the planner, which could cast a reversal's source first (and fail).
    return Case(
        When(reason=LedgerEntry.Reason.GOLD, source__startswith="gold:", then=digits),
        default=None,
        output_field=BigIntegerField(),
    )


def _gold_reversed() -> Exists:
    """The condition on a credit that its reversal (``reversal:<credit id>``) exists."""
    return Exists(
        LedgerEntry.objects.filter(
            reason=LedgerEntry.Reason.REVERSAL,
            source=Concat(
                Value("reversal:"), Cast(OuterRef("pk"), CharField()), output_field=CharField()
            ),
        )
    )


def _gold_standing(answer_ids: list[int], item_ids: Iterable[int]) -> set[int]:
    """Of ``answer_ids`` (answers to ``item_ids``), those with a gold bonus that stands (not
    reversed), whatever its version."""
    return set(
        LedgerEntry.objects.filter(reason=LedgerEntry.Reason.GOLD, item_id__in=list(item_ids))
        .annotate(answer_id=_gold_answer_id())
        .filter(answer_id__in=answer_ids)
        .exclude(_gold_reversed())
        .values_list("answer_id", flat=True)
    )


def _gold_bonuses_owed(bonuses: QuerySet[LedgerEntry]) -> QuerySet[LedgerEntry]:
    """Of ``bonuses`` (gold credits), those owed back and not reversed yet: the answer was
    withdrawn, its item is no longer gold, its gold answer was corrected and the answer no
    longer matches it, or the answer was given before the item was made gold. A bonus kept at
    the upgrade that brought reversals (``GoldBonusKept``) is not owed back while its item's
    gold answer stays as it was then (that of an answer withdrawn before it, never); a later
    change reverses it like any other."""
    answers = Annotation.objects.filter(pk=OuterRef("answer_id"))
    return (
        bonuses.annotate(
            answer_id=_gold_answer_id(),
            answer_label=Subquery(answers.values("label")[:1]),
            answer_at=Subquery(answers.values("created_at")[:1]),
        )
        .filter(
            Q(answer_label__isnull=True)
            | Q(item__gold_label="")
            | ~Q(answer_label=F("item__gold_label"))
            | Q(item__gold_since__gt=F("answer_at"))
        )
        .exclude(_gold_reversed())
        .annotate(
            kept=Exists(GoldBonusKept.objects.filter(bonus=OuterRef("pk"))),
            kept_now=Exists(
                GoldBonusKept.objects.filter(
                    bonus=OuterRef("pk"), gold_version=OuterRef("item__gold_version")
                )
            ),
        )
        # Kept while the gold answer stays as it was at the upgrade; the bonus of an answer
        # withdrawn before it, for good (no gold answer can make that one deserved again).
        .exclude(Q(kept_now=True) | Q(kept=True, answer_label__isnull=True))
    )


def gold_bonuses_reverse_owed(*, item_id: int | None = None) -> int:
    """Reverse every gold bonus owed back (``_gold_bonuses_owed``), or only ``item_id``'s: run
    after a moderator un-golds an item or corrects its gold answer, and by the periodic sweep,
    which finds the reversals a crash or a lost task left unwritten. Each reversal is the
    bonus's net (after any budget cut), written once: its source, ``reversal:<bonus id>``, is
    unique, and the bonuses are locked and checked again before it is written. A bonus already
    paid is taken back the same way: the negative entry nets against the contributor's next
    payout (a wallet is paid only while its net is positive). Returns how many it wrote."""
    bonuses = LedgerEntry.objects.filter(reason=LedgerEntry.Reason.GOLD)
    if item_id is not None:
        bonuses = bonuses.filter(item_id=item_id)
    owed = list(_gold_bonuses_owed(bonuses).order_by("id").values_list("pk", flat=True))
    written = 0
    for start in range(0, len(owed), _GOLD_REVERSAL_CHUNK):
        chunk = owed[start : start + _GOLD_REVERSAL_CHUNK]
        with transaction.atomic():
            # Locked, then read again: a concurrent sweep, or a budget cut of the bonus, went
            # first and we see it, or waits for us.
            list(
                LedgerEntry.objects.select_for_update()
                .filter(pk__in=chunk)
                .order_by("id")
                .values_list("pk", flat=True)
            )
            credits = list(_gold_bonuses_owed(LedgerEntry.objects.filter(pk__in=chunk)))
            net = _net_of(credits)
            epoch = reward_epoch(timezone.now())
            reversals = [
                _reversal(credit, net[credit.pk], epoch, "gold bonus no longer deserved")
                for credit in credits
                if net[credit.pk] > 0
            ]
            # None of them exists (checked under the lock), and the source's uniqueness keeps
            # it so.
            LedgerEntry.objects.bulk_create(reversals)
            written += len(reversals)
    return written


def gold_item_bonuses_settle(*, item_id: int) -> tuple[int, int]:
    """After a moderator changes an item's gold answer: reverse the bonuses it made undeserved
    (``gold_bonuses_reverse_owed``), then credit each right answer given while the item was
    gold that has no standing bonus (``gold_answer_credit``, under the current policy), e.g.
    after a typo in the gold answer is fixed. Each once, whatever runs twice or concurrently.
    Returns (reversed, credited)."""
    reversed_ = gold_bonuses_reverse_owed(item_id=item_id)
    item = Item.objects.filter(pk=item_id).exclude(gold_label="").first()
    if item is None:
        return reversed_, 0
    # As the credit sweep: an answer whose undo window has ended is paid only if the policy its
    # task met then had a bonus (one set later pays from then on, not the answers before it).
    versions = _policy_versions(item.project_id)
    now = timezone.now()
    right = [
        pk
        for pk, created_at in gold_answers(
            Annotation.objects.filter(item=item, label=item.gold_label)
        )
        .order_by("id")
        .values_list("pk", "created_at")
        if created_at + _undo() > now or _gold_bonus_when_due(versions, created_at) > 0
    ]
    standing = _gold_standing(right, [item_id])
    credited = sum(gold_answer_credit(annotation_id=pk) for pk in right if pk not in standing)
    return reversed_, credited


def decision_credit(*, decision_id: int) -> int:
    """Turn one recorded decision into ledger entries; returns how many it wrote.

    Once per decision (``DecisionCredit``; repeats write nothing): the item's contributor is
    credited for its first acceptance, each label that agrees with the decision as the project's
    reward policy says, and a re-decision first reverses the label credits of the item's earlier
    decisions, which are unpaid (settlement leaves alone the credits of an item whose latest
    decision isn't credited yet, and labeling re-decides only unpaid items).

    Only the item's latest decision pays, whatever order the credits run in (a task that ran
    late, or was lost and found by the sweep): a decision credited after a later one of its item
    was recorded is marked credited with no entries, and the latest reverses every earlier
    decision's label credits still standing, not only the previous one's.
    """
    with transaction.atomic():
        decision = Decision.objects.select_related("item__project").get(pk=decision_id)
        item = decision.item
        _ledger_credit_lock([item.project_id])
        # Then lock the item, as labeling does before it re-decides or rechecks the item and
        # locks its credits: our new credits' foreign key needs the item row, so locking it
        # last would deadlock with a re-decision holding it and waiting for the credits.
        Item.objects.select_for_update().filter(pk=item.pk).values_list("pk").first()
        # Then the item's decisions, then its credits. The decisions' lock makes the credits of
        # one item run one at a time, so a later decision's credit sees the entries an earlier
        # one wrote (and reverses them), or the earlier one sees the later decision (and pays
        # nothing); a settlement allocating the credits waits for us, or we see it did.
        versions = list(
            Decision.objects.select_for_update()
            .filter(item=item)
            .order_by("id")
            .values_list("version", flat=True)
        )
        held = list(
            LedgerEntry.objects.select_for_update()
            .filter(item=item)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if DecisionCredit.objects.filter(decision=decision).exists():
            return 0
        policy = reward_policy_current(project=item.project)
        if max(versions) > decision.version:
            # Replaced before it was credited: its labelers agreed with a label the item no
            # longer has, and the latest decision's credit settles the contribution.
            DecisionCredit.objects.create(decision=decision, policy=policy, entries=0)
            return 0
        epoch = _epoch_open(item.project_id, timezone.now())
        # Every credit of an item (contribution and labels) carries the item: one without
        # entries has nothing to reverse and no contribution credit, so the lookups are skipped.
        earlier = [version for version in versions if version < decision.version] if held else []
        if earlier:
            _reverse_label_credits(item, earlier, epoch)
        contribution = _contribution_standing(item) if held else None
        entries = _decision_entries(decision, policy, epoch, contribution)
        created = LedgerEntry.objects.bulk_create(entries, ignore_conflicts=True)
        DecisionCredit.objects.create(decision=decision, policy=policy, entries=len(created))
    return len(entries)


def decisions_credit(*, decision_ids: Iterable[int]) -> int:
    """``decision_credit`` for many decisions (a batch the labeling app decided together);
    returns how many entries it wrote. A decision replaced by a later one of its item is marked
    credited with no entries; an item's first credits (it has no ledger entry yet, so nothing
    to reverse and no contribution credited) are written for the whole batch in one transaction
    and a few statements; the latest decision of an item that has entries goes through
    ``decision_credit`` after them."""
    ids = sorted(set(decision_ids))
    one_by_one: list[int] = []
    written = 0
    with transaction.atomic():
        decisions = list(
            Decision.objects.select_related("item__project").filter(pk__in=ids).order_by("id")
        )
        item_ids = {decision.item_id for decision in decisions}
        _ledger_credit_lock(decision.item.project_id for decision in decisions)
        # Lock the items, their decisions, then their credits, as decision_credit does (in id
        # order: two credits never wait for each other's locks).
        list(
            Item.objects.select_for_update()
            .filter(pk__in=list(item_ids))
            .order_by("id")
            .values_list("pk", flat=True)
        )
        latest: dict[int, int] = {}
        for item_id, version in (
            Decision.objects.select_for_update()
            .filter(item_id__in=list(item_ids))
            .order_by("id")
            .values_list("item_id", "version")
        ):
            latest[item_id] = max(version, latest.get(item_id, 0))
        held = set(
            LedgerEntry.objects.select_for_update()
            .filter(item_id__in=list(item_ids))
            .values_list("item_id", flat=True)
        )
        credited = set(
            DecisionCredit.objects.filter(decision_id__in=ids).values_list("decision_id", flat=True)
        )
        policies: dict[int, RewardPolicy] = {}
        now = timezone.now()
        epochs: dict[int, int] = {}
        entries: list[LedgerEntry] = []
        credits: list[DecisionCredit] = []
        for decision in decisions:
            if decision.pk in credited:
                continue
            project = decision.item.project
            if project.pk not in policies:
                policies[project.pk] = reward_policy_current(project=project)
                epochs[project.pk] = _epoch_open(project.pk, now)
            if decision.version < latest[decision.item_id]:
                credits.append(
                    DecisionCredit(decision=decision, policy=policies[project.pk], entries=0)
                )
                continue
            if decision.item_id in held:
                one_by_one.append(decision.pk)
                continue
            new = _decision_entries(decision, policies[project.pk], epochs[project.pk], None)
            entries += new
            credits.append(
                DecisionCredit(decision=decision, policy=policies[project.pk], entries=len(new))
            )
        LedgerEntry.objects.bulk_create(entries, ignore_conflicts=True)
        DecisionCredit.objects.bulk_create(credits)
        written += len(entries)
    for decision_id in one_by_one:
        written += decision_credit(decision_id=decision_id)
    return written


def _decision_entries(
    decision: Decision,
    policy: RewardPolicy,
    epoch: int,
    contribution: tuple[LedgerEntry, bool] | None,
) -> list[LedgerEntry]:
    """The entries a decision writes, besides the reversal of the previous decision's label
    credits: the contribution credit (or its reversal, for a decision without a label) given
    the item's ``contribution`` standing, and each agreeing label's credit."""
    item = decision.item
    entries: list[LedgerEntry] = []
    if not decision.label:
        # A decision without a label takes an acceptance back: its label credits are
        # reversed, and the uploader's contribution credit with them.
        if contribution is not None and contribution[1]:
            credit = contribution[0]
            net = _net_of([credit])[credit.pk]
            entries.append(_reversal(credit, net, epoch, f"item {item.pk} reopened"))
        return entries
    if (
        item.contributor_id is not None
        and policy.per_item > 0
        and (contribution is None or not contribution[1])
    ):
        # Credited once per acceptance: again only if a withdrawal reversed the last one.
        source = (
            f"item:{item.pk}" if contribution is None else f"item:{item.pk}:v{decision.version}"
        )
        entries.append(
            _entry(
                user_id=item.contributor_id,
                reason=LedgerEntry.Reason.CONTRIBUTION,
                source=source,
                reward=contribution_reward(base=int(policy.per_item)),
                policy=policy,
                item=item,
                epoch=epoch,
            )
        )
    if policy.per_label > 0:
        for agreeing in decision.agreeing:
            accuracy = agreeing.get("accuracy")
            reward = label_reward(
                base=int(policy.per_label),
                posterior=decision.posterior,
                accuracy=settings.CONSENSUS_DEFAULT_ACCURACY if accuracy is None else accuracy,
                accuracy_source="default" if accuracy is None else "fit",
                n_classes=decision.n_classes,
                weight_by_posterior=policy.weight_by_posterior,
                weight_by_skill=policy.weight_by_skill,
            )
            if reward.amount <= 0:
                continue
            entries.append(
                _entry(
                    user_id=int(agreeing["user"]),
                    reason=LedgerEntry.Reason.LABEL,
                    source=label_credit_source(int(agreeing["annotation"]), decision.version),
                    reward=reward,
                    policy=policy,
                    item=item,
                    epoch=epoch,
                )
            )
    return entries


#: How many decisions the sweep of uncredited ones credits per transaction.
CREDIT_BATCH = 200


def decisions_credit_pending() -> int:
    """Credit every recorded decision not credited yet (a sweep after lost tasks); returns how
    many it credited."""
    pending = list(
        Decision.objects.filter(credit__isnull=True).order_by("id").values_list("pk", flat=True)
    )
    credited = 0
    for start in range(0, len(pending), CREDIT_BATCH):
        batch = pending[start : start + CREDIT_BATCH]
        decisions_credit(decision_ids=batch)
        credited += DecisionCredit.objects.filter(decision_id__in=batch).count()
    return credited


def gold_answer_credit(*, annotation_id: int) -> bool:
    """The gold bonus of one answer to a gold item, if it is right and the policy has a bonus.

    Weighted by the labeler's gold accuracy in the project so far (``rewards.policy``). Once per
    answer (its ledger source). Returns whether it credited.
    """
    with transaction.atomic():
        found = (
            Annotation.objects.filter(pk=annotation_id)
            .values_list("item_id", "item__project_id")
            .first()
        )
        if found is None:
            return False
        item_id, project_id = found
        # Lock order, as every path that locks these: the project's ledger lock (shared), then
        # the item's row, then the answer's row (a withdrawal, ``annotation_withdraw``, locks the
        # item before it deletes the answer; ``decision_credit`` takes the ledger lock, then the
        # item); ``item_gold_set`` locks only the item and takes no ledger lock, so none of them
        # waits for a lock held by one waiting for us.
        _ledger_credit_lock([project_id])
        # The item's row stays locked until the bonus is written, so its gold answer (read
        # below, after the lock) can't change meanwhile: a moderator's change (``item_gold_set``)
        # waits for us, and the settling after its commit reverses our bonus if the change made
        # it undeserved; or the change went first and we read the new gold answer and version.
        # Without it, a change committed and settled between our read and our write left a
        # bonus under the old gold answer standing until the next sweep. (No key update: the
        # answers' and credits' foreign key checks on the item don't wait for us.)
        Item.objects.select_for_update(no_key=True).filter(pk=item_id).values_list("pk").first()
        # The answer's row stays locked until its bonus is written: a withdrawal waits, then its
        # reversal (``gold_answer_reverse``) finds the bonus; or it went first and there's none.
        annotation = (
            Annotation.objects.select_for_update(of=("self",))
            .select_related("item__project")
            .filter(pk=annotation_id)
            .first()
        )
        return _gold_answer_credit(annotation)


def _gold_answer_credit(annotation: Annotation | None) -> bool:
    if annotation is None or not annotation.item.gold_label:
        return False
    item = annotation.item
    if annotation.label != item.gold_label:
        return False
    if item.gold_since is not None and annotation.created_at < item.gold_since:
        return False  # given before the item was made gold: the labeler saw an ordinary item
    policy = reward_policy_current(project=item.project)
    if policy.gold_bonus <= 0:
        return False
    answered = gold_answers(
        Annotation.objects.filter(
            annotator_id=annotation.annotator_id, item__project=item.project, pk__lte=annotation.pk
        )
    ).values_list("label", "item__gold_label")
    correct = sum(1 for label, gold in answered if label == gold)
    reward = gold_reward(
        base=int(policy.gold_bonus),
        correct=correct,
        answered=len(answered),
        n_classes=len(item.project.classes),
    )
    if reward.amount <= 0:
        return False
    source = gold_bonus_source(annotation.pk, item.gold_version)
    if _gold_standing([annotation.pk], [item.pk]) or (
        LedgerEntry.objects.filter(reason=LedgerEntry.Reason.GOLD, source=source).exists()
    ):
        # Credited already, under this gold version or an earlier one whose bonus stands (the
        # answer's row lock orders us after that credit); or this version's bonus was reversed.
        return False
    LedgerEntry.objects.bulk_create(
        [
            _entry(
                user_id=annotation.annotator_id,
                reason=LedgerEntry.Reason.GOLD,
                source=source,
                reward=reward,
                policy=policy,
                item=item,
                epoch=_epoch_open(item.project_id, timezone.now()),
            )
        ],
        ignore_conflicts=True,
    )
    return True


#: How far back the gold sweep looks: a lost task is found within minutes, and older answers
#: would be paid under a policy that may have changed since.
GOLD_SWEEP_DAYS = 2
_GOLD_SWEEP_CHUNK = 500


def _undo() -> timedelta:
    return timedelta(seconds=settings.UNDO_SECONDS)


def _policy_versions(project_id: int) -> list[tuple[datetime, int]]:
    """A project's reward policy versions, oldest first: (created_at, gold_bonus)."""
    return list(
        RewardPolicy.objects.filter(project_id=project_id)
        .order_by("version")
        .values_list("created_at", "gold_bonus")
    )


def _gold_bonus_when_due(versions: list[tuple[datetime, int]], answered_at: datetime) -> int:
    """The gold bonus an answer given at ``answered_at`` was due: that of the policy version
    its credit task met, when the answer's undo window ended."""
    return _gold_bonus_at(versions, answered_at + _undo())


def _gold_bonus_at(versions: list[tuple[datetime, int]], moment: datetime) -> int:
    """The gold bonus of the last of ``versions`` (oldest first) made by ``moment``; 0 if none
    was (the first credit after it made version 1, with no bonus)."""
    bonus = 0
    for created_at, gold_bonus in versions:
        if created_at > moment:
            break
        bonus = gold_bonus
    return bonus


def gold_answers_credit_pending(*, now: datetime | None = None) -> int:
    """Credit the gold bonus of every right answer to a gold item whose task was lost (a broker
    outage at commit): answers past their undo window (so never withdrawn now), from the last
    ``GOLD_SWEEP_DAYS`` days, in projects whose current policy pays a gold bonus and whose
    policy paid one when the answer's undo window ended (when its task ran). Safe to run twice
    and beside the tasks (once per answer). Returns how many it credited."""
    now = now or timezone.now()
    # Each paying project's versions, oldest first: an answer is paid only if the version its
    # task met (when the answer's undo window ended) had a bonus. A task that found none paid
    # what was owed, nothing: a bonus set later pays from then on, not the answers before it.
    paying = {
        project.pk: _policy_versions(project.pk)
        for project in Project.objects.filter(items__gold_label__gt="").distinct()
        if reward_policy_in_force(project=project).gold_bonus > 0  # read only: writes no version
    }
    if not paying:
        return 0
    answers = (
        gold_answers(Annotation.objects.all())
        .filter(
            item__project_id__in=list(paying),
            label=F("item__gold_label"),
            created_at__gte=now - timedelta(days=GOLD_SWEEP_DAYS),
            created_at__lt=now - timedelta(seconds=settings.UNDO_SECONDS + 60),
        )
        .order_by("id")
        .values_list("pk", "created_at", "item__project_id", "item_id")
    )
    items: dict[int, int] = {}
    for pk, created_at, project_id, item_id in answers:
        if _gold_bonus_when_due(paying[project_id], created_at) > 0:
            items[pk] = item_id
    ids = list(items)
    credited = 0
    for start in range(0, len(ids), _GOLD_SWEEP_CHUNK):
        chunk = ids[start : start + _GOLD_SWEEP_CHUNK]
        standing = _gold_standing(chunk, {items[pk] for pk in chunk})
        for pk in chunk:
            if pk not in standing:
                credited += gold_answer_credit(annotation_id=pk)
    return credited


#: How many recently changed gold items the sweep reads per query.
_GOLD_ITEMS_SWEEP_CHUNK = 200


def gold_items_settle_changed(*, now: datetime | None = None) -> tuple[int, int]:
    """Settle (``gold_item_bonuses_settle``) every item whose gold answer a moderator changed
    in the last ``GOLD_SWEEP_DAYS`` days (``Item.gold_changed_at``), whatever the age of its
    answers: the settling task after a change may have been lost (a broker outage at commit),
    and ``gold_answers_credit_pending`` looks only at recent answers, so an old answer whose
    bonus a typo reversed would otherwise never be paid again after the fix. Safe to run twice
    and beside the tasks (each reversal and credit once). Returns (reversed, credited)."""
    since = (now or timezone.now()) - timedelta(days=GOLD_SWEEP_DAYS)
    reversed_ = credited = 0
    after = 0
    while True:
        # In id order, a chunk at a time (the partial index ``item_gold_changed`` finds them).
        chunk = list(
            Item.objects.filter(gold_changed_at__gte=since, pk__gt=after)
            .order_by("id")
            .values_list("pk", flat=True)[:_GOLD_ITEMS_SWEEP_CHUNK]
        )
        for item_id in chunk:
            item_reversed, item_credited = gold_item_bonuses_settle(item_id=item_id)
            reversed_ += item_reversed
            credited += item_credited
        if len(chunk) < _GOLD_ITEMS_SWEEP_CHUNK:
            return reversed_, credited
        after = chunk[-1]


def ledger_close_epochs(*, now: datetime | None = None) -> list[EpochClose]:
    """Close every ended epoch of every project whose policy has a budget, from the epoch the
    budget took effect in: scale that epoch's unpaid credits down proportionally (``budget``
    entries) when what its credits pay is above it. Idempotent; a closed epoch stays closed.
    An epoch that ended before the budget is never closed, nor cut: it ran under no budget."""
    current = reward_epoch(now or timezone.now())
    closed: list[EpochClose] = []
    for project_id, budget in budgeted_policies().items():
        done = set(EpochClose.objects.filter(project_id=project_id).values_list("epoch", flat=True))
        epochs = (
            LedgerEntry.objects.filter(
                project_id=project_id, epoch__gte=budget.first_epoch, epoch__lt=current
            )
            .exclude(epoch__in=done)
            .values_list("epoch", flat=True)
            .distinct()
        )
        for epoch in sorted({e for e in epochs if e is not None}):
            closed.append(_close_epoch(project_id, epoch, budget.policy))
    return closed


@dataclass(frozen=True)
class EpochBudget:
    """A project's budget: its current policy, and the first epoch the budget applies to, the
    one in which the first of the unbroken run of budgeted versions ending in it was made."""

    policy: RewardPolicy
    first_epoch: int


def budgeted_policies() -> dict[int, EpochBudget]:
    """The budget of every project whose current policy has an epoch budget."""
    latest: dict[int, EpochBudget | None] = {}
    for policy in RewardPolicy.objects.order_by("project_id", "version"):
        if policy.epoch_budget is None:
            latest[policy.project_id] = None
            continue
        before = latest.get(policy.project_id)
        first = reward_epoch(policy.created_at) if before is None else before.first_epoch
        latest[policy.project_id] = EpochBudget(policy=policy, first_epoch=first)
    return {pid: budget for pid, budget in latest.items() if budget is not None}


def _close_epoch(project_id: int, epoch: int, policy: RewardPolicy) -> EpochClose:
    """Scale one epoch's credits to the budget. What the epoch spent is what its credits pay
    now (a reversed credit pays nothing, wherever its reversal was written; the credits of a
    contributor a fraud flag holds or who is banned are left out, and uncut); a credit already in a payout can't
    be cut, so it counts but keeps its amount, and the credits still unpaid share what the
    budget leaves, down to nothing: no credit loses more than it pays."""
    budget = int(policy.epoch_budget or 0)
    with transaction.atomic():
        # The project's ledger lock, exclusively: a credit being written now (holding it shared)
        # commits first and is counted here, or waits and lands in a later, open epoch.
        transaction_lock("ledger-epoch", project_id)
        # Lock the epoch's credits: a re-decision reversing one, or a settlement allocating
        # one, waits for us, or we see what it did.
        credits = list(
            LedgerEntry.objects.select_for_update()
            .filter(project_id=project_id, epoch=epoch)
            .exclude(reason__in=[LedgerEntry.Reason.REVERSAL, LedgerEntry.Reason.BUDGET])
            .order_by("id")
        )
        existing = EpochClose.objects.filter(project_id=project_id, epoch=epoch).first()
        if existing is not None:
            return existing
        paid = set(
            PayoutAllocation.objects.filter(entry_id__in=[c.pk for c in credits]).values_list(
                "entry_id", flat=True
            )
        )
        # The credits of contributors a fraud flag holds or a ban stops count for nothing:
        # settlement doesn't pay them, and a ring caught before the close would otherwise halve
        # what the budget leaves honest labelers. (Released later, by a dismissed flag or an
        # unban, they are cut at the rate the others were: ``_released_credits_cut``.)
        held = _users_stopped({c.user_id for c in credits if c.pk not in paid})
        held_users = sorted({c.user_id for c in credits if c.pk not in paid and c.user_id in held})
        credits = [c for c in credits if c.pk in paid or c.user_id not in held]
        net = _net_of(credits)
        spent = sum(net.values())
        cuttable = [c for c in credits if c.pk not in paid and net[c.pk] > 0]
        cuts = budget_scale(positives=[net[c.pk] for c in cuttable], net=spent, budget=budget)
        cut_from = sum(net[c.pk] for c in cuttable) if any(cuts) else 0
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    user_id=entry.user_id,
                    amount=-cut,
                    reason=LedgerEntry.Reason.BUDGET,
                    source=f"budget:{entry.pk}",
                    project_id=project_id,
                    item_id=entry.item_id,
                    memo=f"epoch {epoch} spent {spent} of a {budget} budget",
                    policy_version=policy.version,
                    policy_inputs={
                        "rule": "budget",
                        "epoch": epoch,
                        "budget": str(budget),
                        "spent": str(spent),
                        "credit": entry.pk,
                        "credit_net": str(net[entry.pk]),
                    },
                    epoch=epoch,
                )
                for entry, cut in zip(cuttable, cuts, strict=True)
                if cut > 0
            ],
            ignore_conflicts=True,
        )
        return EpochClose.objects.create(
            project_id=project_id,
            epoch=epoch,
            budget=budget,
            spent=spent,
            scaled_to=spent - sum(cuts),
            policy=policy,
            cut_from=cut_from,
            cut_to=cut_from - sum(cuts),
            held_users=held_users,
        )


def _released_credits_cut(rows: list[tuple[int, int, int, int]]) -> bool:
    """Cut the credits a closed epoch left out, of contributors no longer held, at the rate the
    epoch's other credits were cut (``budget`` entries, as the close writes): a contributor
    cleared after the close is paid what the others were for the same work, not more.

    ``rows`` are unpaid, locked ``(entry id, user id, project id, epoch)`` of positive credits;
    call it only for contributors no longer held. Whether a credit was left out is read from its
    epoch's close (``held_users``), whatever the project's budget is now. Returns whether any
    was, at a rate below 1 (its cut written now, or already there).
    """
    if not rows:
        return False
    closes = {
        (close.project_id, close.epoch): close
        for close in EpochClose.objects.select_related("policy").filter(
            project_id__in={row[2] for row in rows}, epoch__in={row[3] for row in rows}
        )
    }
    left_out = [
        (entry_id, closes[(project_id, epoch)])
        for entry_id, user_id, project_id, epoch in rows
        if (project_id, epoch) in closes and user_id in closes[(project_id, epoch)].held_users
    ]
    already = set(
        LedgerEntry.objects.filter(
            reason=LedgerEntry.Reason.BUDGET,
            source__in=[f"budget:{entry_id}" for entry_id, _ in left_out],
        ).values_list("source", flat=True)
    )
    rated = [(entry_id, close) for entry_id, close in left_out if int(close.cut_from) > 0]
    cut_from_close = [(e, close) for e, close in rated if f"budget:{e}" not in already]
    if not cut_from_close:
        return bool(rated)  # cut already (by an earlier or a concurrent settlement), or never
    credits = LedgerEntry.objects.in_bulk([entry_id for entry_id, _ in cut_from_close])
    net = _net_of(list(credits.values()))
    cuts = []
    for entry_id, close in cut_from_close:
        credit, pays = credits[entry_id], net[entry_id]
        cut = pays - pays * int(close.cut_to) // int(close.cut_from)
        if pays <= 0 or cut <= 0:
            continue
        cuts.append(
            LedgerEntry(
                user_id=credit.user_id,
                amount=-cut,
                reason=LedgerEntry.Reason.BUDGET,
                source=f"budget:{credit.pk}",
                project_id=credit.project_id,
                item_id=credit.item_id,
                memo=f"epoch {close.epoch} was paid at {close.cut_to} of {close.cut_from}: "
                "released after its close, cut at that rate",
                policy_version=close.policy.version,
                policy_inputs={
                    "rule": "budget",
                    "epoch": close.epoch,
                    "released": True,
                    "cut_from": str(close.cut_from),
                    "cut_to": str(close.cut_to),
                    "credit": credit.pk,
                    "credit_net": str(pays),
                },
                epoch=close.epoch,
            )
        )
    LedgerEntry.objects.bulk_create(cuts, ignore_conflicts=True)
    return True


# --- Settlement -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlementReport:
    confirmed: list[str]
    pending: list[str]
    failed: list[str]
    awaiting_approval: list[str] = field(default_factory=list)
    # Prepared or submitted for another chain or payout contract than this client's: left alone.
    other_contract: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        text = (
            f"{len(self.confirmed)} batch(es) confirmed, {len(self.pending)} pending, "
            f"{len(self.failed)} failed"
        )
        if self.awaiting_approval:
            text += f", {len(self.awaiting_approval)} awaiting a moderator's approval"
        if self.other_contract:
            text += (
                f", {len(self.other_contract)} made for another chain or payout contract "
                "(settle them with a client for it)"
            )
        return text


def _payable_entries() -> list[tuple[int, int, str, int]]:
    """Unpaid entries that may be paid now, locked for this transaction, in id order:
    ``(entry id, user id, wallet, amount)``.

    Waiting: credits younger than ``PAYOUT_HOLD_SECONDS``; users without a wallet or banned;
    items whose latest decision isn't credited yet
    (its re-decision may still reverse their label credits); and, for projects with an epoch
    budget, credits of epochs not closed yet (they may still be scaled down), from the epoch
    the budget took effect in.
    """
    payable, released = _payable_now()
    if _released_credits_cut(released):
        # Read again, with the cuts: written now, or by a concurrent settlement after our first
        # read (whose snapshot held the credit but not its cut).
        payable, _ = _payable_now()
    return payable


def _payable_now() -> tuple[list[tuple[int, int, str, int]], list[tuple[int, int, int, int]]]:
    """``_payable_entries``' list, and the credits in it that a closed epoch left out of its
    cut (their contributor was held then): ``(entry id, user id, project id, epoch)``."""
    due = (
        LedgerEntry.objects.select_for_update(of=("self",))
        .filter(
            allocation__isnull=True,
            user__wallet_address__isnull=False,
            user__banned_at__isnull=True,
        )
        .order_by("id")
        .values_list(
            "id",
            "user_id",
            "user__wallet_address",
            "amount",
            "item_id",
            "project_id",
            "created_at",
            "epoch",
        )
    )
    rows = list(due)
    fresh_after = timezone.now() - timedelta(seconds=settings.PAYOUT_HOLD_SECONDS)
    pending_items = set(
        Decision.objects.filter(
            credit__isnull=True, item_id__in={row[4] for row in rows if row[4] is not None}
        ).values_list("item_id", flat=True)
    )
    budgeted = budgeted_policies()
    closed = set(
        EpochClose.objects.filter(project_id__in=list(budgeted)).values_list("project_id", "epoch")
    )
    users = {row[1] for row in rows}
    held = users_held(users)
    allowance = _probation_allowance(users - held)
    payable = []
    released = []
    for entry_id, user_id, wallet, amount, item_id, project_id, created_at, epoch in rows:
        if wallet is None or item_id in pending_items or user_id in held:
            continue
        if int(amount) > 0 and created_at > fresh_after:
            continue  # too new: the fraud scan hasn't looked at it yet (a reversal never waits)
        budget = budgeted.get(project_id)
        if (
            budget is not None
            and int(amount) > 0
            and (epoch is None or epoch >= budget.first_epoch)
            and (project_id, epoch) not in closed
        ):
            # Its epoch may still cut it. A reversal or a cut never waits: it only takes back,
            # and a reversal written in a later epoch than its credit goes with the credit.
            continue
        if int(amount) > 0 and epoch is not None and project_id is not None:
            # Maybe left out of its epoch's close (checked against the closes themselves, not
            # the project's budget now: removed or set anew since, it still cut the others).
            released.append((entry_id, user_id, project_id, epoch))
        if user_id in allowance:
            if int(amount) > allowance[user_id]:
                continue  # over the probation cap: waits until the record earns trust
            allowance[user_id] -= int(amount)
        payable.append((entry_id, user_id, wallet, int(amount)))
    return payable, released


def _probation_allowance(user_ids: set[int]) -> dict[int, int]:
    """For contributors on probation, what may still be paid to them in all: the cap
    (``PROBATION_PAYOUT_CAP`` whole units of the payout asset) less what is paid or in a batch."""
    on = users_on_probation(user_ids)
    if not on:
        return {}
    cap = int(Decimal(settings.PROBATION_PAYOUT_CAP) * 10 ** payout_asset().decimals)
    # Summed here, not in SQL: base units of an 18-decimal token overflow SQLite's integers.
    paid: dict[int, int] = defaultdict(int)
    for user_id, amount in LedgerEntry.objects.filter(
        user_id__in=on, allocation__isnull=False
    ).values_list("user_id", "amount"):
        paid[user_id] += int(amount)
    return {user_id: max(0, cap - paid[user_id]) for user_id in on}


def payout_batch_prepare(*, client: ChainClient) -> PayoutBatch | None:
    """Group payable credits per wallet into a new batch (at most 500 recipients when minting,
    400 for an ERC-20), with a receipt per credit and the receipts' Merkle root.

    Wallets whose payable net is below ``PAYOUT_MINIMUM`` wait (``_payable_entries`` says what
    else waits). Returns ``None`` when nothing is due. The credits are locked while the batch is
    made, so a concurrent settlement or re-decision waits; and a credit can be in one live batch
    only (the allocation is one-to-one).
    """
    mode = client.mode or MINT
    max_recipients = min(settings.PAYOUT_BATCH_MAX_RECIPIENTS, max_batch_size(mode))
    minimum = max(1, settings.PAYOUT_MINIMUM)
    chain_id, contract = client.chain_id, client.payout_address or ""  # no I/O in the transaction
    try:
        with transaction.atomic():
            # Net per wallet (reversals and budget cuts are negative).
            per_wallet: OrderedDict[str, tuple[int, list[int]]] = OrderedDict()
            wallets: dict[int, str] = {}
            for entry_id, user_id, wallet, amount in _payable_entries():
                wallets[user_id] = wallet
                net, ids = per_wallet.get(wallet, (0, []))
                ids.append(entry_id)
                per_wallet[wallet] = (net + amount, ids)
            payable = [
                (wallet, net, ids) for wallet, (net, ids) in per_wallet.items() if net >= minimum
            ][:max_recipients]
            if not payable:
                return None
            totals = OrderedDict((wallet, net) for wallet, net, _ in payable)
            entry_ids = [entry_id for _, _, ids in payable for entry_id in ids]
            batch = PayoutBatch.objects.create(
                batch_id="0x" + secrets.token_hex(32),
                chain_id=chain_id,
                mode=mode,
                token_address=contract,
                recipient_count=len(totals),
                total=sum(totals.values()),
            )
            entries = list(
                LedgerEntry.objects.filter(pk__in=entry_ids)
                .select_related("project", "item")
                .order_by("id")
            )
            receipts, root = batch_receipts(
                batch=batch, entries=entries, wallets=wallets, asset=payout_asset()
            )
            batch.receipts_root = "0x" + root.hex()
            batch.save(update_fields=["receipts_root"])
            PayoutTransfer.objects.bulk_create(
                PayoutTransfer(batch=batch, wallet_address=wallet, amount=amount)
                for wallet, amount in totals.items()
            )
            PayoutAllocation.objects.bulk_create(
                PayoutAllocation(
                    batch=batch,
                    entry_id=receipt.entry_id,
                    receipt=receipt.body,
                    leaf="0x" + receipt.leaf.hex(),
                )
                for receipt in receipts
            )
    except IntegrityError:
        logger.info("another settlement allocated these credits first")
        return None
    failpoint("after_prepare")
    return batch


def _batch_id_bytes(batch: PayoutBatch) -> bytes:
    return bytes.fromhex(batch.batch_id[2:])


def _sign(batch: PayoutBatch, client: ChainClient) -> SignedTransaction:
    """Sign the batch's payment with the signer's next nonce (nothing is sent)."""
    transfers = list(batch.transfers.order_by("id").values_list("wallet_address", "amount"))
    return client.sign_payout_batch(
        _batch_id_bytes(batch),
        bytes.fromhex(batch.receipts_root[2:]),
        [wallet for wallet, _ in transfers],
        [int(a) for _, a in transfers],
    )


def _recipients_stopped(batch: PayoutBatch) -> list[int]:
    """The recipients of a prepared batch that settlement would no longer pay: banned, or held
    by a fraud flag, since the batch was made."""
    user_ids = set(
        PayoutAllocation.objects.filter(batch=batch).values_list("entry__user_id", flat=True)
    )
    return sorted(_users_stopped(user_ids))


def _users_stopped(user_ids: set[int]) -> set[int]:
    """Of ``user_ids``, those settlement doesn't pay: banned, or held by a fraud flag."""
    banned = User.objects.filter(pk__in=user_ids, banned_at__isnull=False).values_list(
        "pk", flat=True
    )
    return users_held(user_ids) | set(banned)


def _void_if_recipients_stopped(batch: PayoutBatch) -> bool:
    """Fail a prepared batch (never sent) with a recipient banned or held since it was made: its
    credits are released, and the next batch pays the others and leaves them waiting. Returns
    whether it was voided."""
    stopped = _recipients_stopped(batch)
    if not stopped:
        return False
    _mark_failed(
        batch,
        f"not sent: recipient(s) {', '.join(f'user {pk}' for pk in stopped)} were banned or held "
        "by a fraud flag after the batch was made; its credits go to the next batch, without "
        "theirs",
        status=PayoutBatch.Status.PREPARED,
    )
    batch.refresh_from_db()
    return True


def payout_batch_submit(*, batch: PayoutBatch, client: ChainClient) -> PayoutBatch:
    """Sign the batch's transaction, record its hash, then broadcast it (after the commit).

    Sends nothing, and returns the batch still prepared, if it is held or waits for a
    moderator's approval (``rewards.approval``) when it is claimed, or was made for another
    chain or payout contract than ``client``'s; and fails it, unsent, if a recipient was banned
    or held by a fraud flag after it was made (``_void_if_recipients_stopped``).
    """
    if not _for_this_contract(batch, client):
        return batch
    if batch.status == PayoutBatch.Status.PREPARED and _void_if_recipients_stopped(batch):
        return batch
    signed = _sign(batch, client)
    failpoint("after_sign")
    # The claim itself re-checks the hold and the approval: a moderator may hold the batch
    # after the caller read it, and a row read earlier would send it anyway.
    claim = PayoutBatch.objects.filter(
        pk=batch.pk, status=PayoutBatch.Status.PREPARED, held_at__isnull=True
    )
    if batch_needs_approval(batch):
        claim = claim.filter(approved_at__isnull=False)
    claimed = claim.update(
        status=PayoutBatch.Status.SUBMITTED,
        tx_hash=signed.tx_hash,
        tx_nonce=signed.nonce,
        raw_tx=signed.raw.hex(),
        submitted_at=timezone.now(),
    )
    batch.refresh_from_db()
    if claimed != 1:
        return batch  # another settlement run submitted it, or it waits for a moderator
    failpoint("after_persist")
    _broadcast(batch, signed.raw, client)
    failpoint("after_broadcast")
    return batch


def _broadcast(batch: PayoutBatch, raw: bytes, client: ChainClient) -> None:
    try:
        client.send_raw(raw)
    except ChainError as exc:
        # The node may have taken it anyway (a killed node still mines): the next reconcile reads
        # processedBatches to find out.
        logger.warning("broadcast of batch %s failed: %s", batch.batch_id, exc)


def payout_batch_reconcile(
    *, batch: PayoutBatch, client: ChainClient, wait: bool = True
) -> PayoutBatch:
    """Learn a submitted batch's fate from the chain and record it (a batch made for another
    chain or payout contract than ``client``'s is returned untouched).

    Processed on-chain: confirmed, and its credits count as paid. Mined but reverted and not
    processed: failed, and its credits are released for the next batch. Not mined: re-broadcast
    the same signed transaction, or, if its nonce was consumed by another transaction, sign again
    with a new nonce (the batch id keeps that safe). With ``wait``, it waits for the outcome of
    what it re-sent; otherwise the batch stays submitted for the next run.
    """
    if not _for_this_contract(batch, client):
        return batch
    for _ in range(3):
        batch.refresh_from_db()
        if batch.status != PayoutBatch.Status.SUBMITTED:
            return batch
        failpoint("before_receipt")
        receipt = client.get_receipt(batch.tx_hash)
        if receipt is None and wait and client.has_transaction(batch.tx_hash):
            receipt = client.wait_for_receipt(
                batch.tx_hash, timeout=settings.PAYOUT_RECEIPT_TIMEOUT_SECONDS
            )
        processed = client.is_batch_processed(_batch_id_bytes(batch))
        failpoint("after_receipt")
        if processed:
            _mark_confirmed(batch, receipt if receipt is not None and receipt.status else None)
            failpoint("after_confirm")
        elif receipt is not None and not receipt.status:
            _mark_failed(
                batch, f"transaction {batch.tx_hash} reverted in block {receipt.block_number}"
            )
        elif receipt is not None:
            # Mined and executed, yet the contract says the batch isn't processed: the node read
            # is behind the receipt's block (a load-balanced provider's lagging replica). It
            # stays submitted, its credits allocated, and is read again: never paid twice.
            logger.warning(
                "payout batch %s: transaction %s succeeded in block %s but the batch reads as "
                "not processed yet; reading it again later",
                batch.batch_id,
                batch.tx_hash,
                receipt.block_number,
            )
        elif client.confirmed_nonce() > (batch.tx_nonce or 0):
            _resign(batch, client)
        else:
            _broadcast(batch, bytes.fromhex(batch.raw_tx), client)
        if not wait:
            break
    batch.refresh_from_db()
    return batch


def _mark_confirmed(batch: PayoutBatch, receipt: Receipt | None) -> None:
    fields: dict[str, object] = {
        "status": PayoutBatch.Status.CONFIRMED,
        "confirmed_at": timezone.now(),
    }
    if receipt is not None:
        fields["block_number"] = receipt.block_number
        fields["gas_used"] = receipt.gas_used
    PayoutBatch.objects.filter(pk=batch.pk, status=PayoutBatch.Status.SUBMITTED).update(**fields)


def _mark_failed(
    batch: PayoutBatch, error: str, status: str = PayoutBatch.Status.SUBMITTED
) -> None:
    """``batch``, if still in ``status``, fails and its credits are released for the next; the
    items a ban or a fraud flag left alone while their credits were in it are decided again
    first (``_items_recheck_released``), in the same transaction."""
    with transaction.atomic():
        updated = PayoutBatch.objects.filter(pk=batch.pk, status=status).update(
            status=PayoutBatch.Status.FAILED, error=error
        )
        if updated:
            allocations = PayoutAllocation.objects.filter(batch=batch)
            items = set(
                allocations.filter(entry__item__isnull=False).values_list(
                    "entry__item_id", flat=True
                )
            )
            allocations.delete()
            _items_recheck_released(items, f"payout batch {batch.batch_id[:10]}… failed")
    logger.error("payout batch %s failed: %s", batch.batch_id, error)


def _items_recheck_released(item_ids: set[int], reason: str) -> None:
    """Decide again the accepted items of a failed batch's credits whose counted answers may
    have changed while the batch held them: answered by a contributor banned or held by a fraud
    flag now, or decided without someone's answers. The recheck after that ban, unban or flag
    left them alone (their credits were in a payout) and they are unpaid again: without this,
    the next batch would pay a decision the ban took back (``item_recheck`` says what changes;
    an item whose answers count as they did is left as it is)."""
    from labeling.services.decisions import item_recheck

    if not item_ids:
        return
    accepted = Item.objects.filter(
        pk__in=list(item_ids), status=Item.Status.ACCEPTED, gold_label=""
    )
    answers = list(
        Annotation.objects.filter(item__in=accepted).values_list("item_id", "annotator_id")
    )
    stopped = _users_stopped({user_id for _, user_id in answers})
    recheck = {item_id for item_id, user_id in answers if user_id in stopped}
    recheck |= set(accepted.filter(excluded_labels__gt=0).values_list("pk", flat=True))
    for item_id in sorted(recheck):
        item_recheck(item_id=item_id, reason=reason)


def _resign(batch: PayoutBatch, client: ChainClient) -> None:
    signed = _sign(batch, client)
    replaced = PayoutBatch.objects.filter(
        pk=batch.pk, status=PayoutBatch.Status.SUBMITTED, tx_hash=batch.tx_hash
    ).update(
        tx_hash=signed.tx_hash,
        tx_nonce=signed.nonce,
        raw_tx=signed.raw.hex(),
        attempts=[*batch.attempts, batch.tx_hash],
        submitted_at=timezone.now(),
    )
    if replaced:
        _broadcast(batch, signed.raw, client)


def payout_batch_approve(*, batch: PayoutBatch, moderator: User, reason: str = "") -> bool:
    """A moderator approves a prepared batch for broadcast (and lifts a hold), with a reason.

    Returns whether this call approved it (``False``: already approved and not held, no longer
    prepared, or voided because a recipient was banned or held by a fraud flag after it was made:
    approving it would have paid them).
    """
    if _void_if_recipients_stopped(batch):
        return False
    with transaction.atomic():
        approved = (
            PayoutBatch.objects.filter(pk=batch.pk, status=PayoutBatch.Status.PREPARED)
            .filter(Q(approved_at__isnull=True) | Q(held_at__isnull=False))
            .update(
                approved_by=moderator,
                approved_at=timezone.now(),
                held_by=None,
                held_at=None,
                hold_reason="",
            )
        )
        if approved:
            audit_record(
                actor=moderator,
                action="payout.approve",
                target=batch,
                details={"total": str(batch.total), "reason": reason},
            )
    return bool(approved)


def payout_batch_hold(*, batch: PayoutBatch, moderator: User, reason: str) -> bool:
    """A moderator holds a prepared batch: it is not sent until approved. Returns whether this
    call put it on hold (``False``: it was already sent, or already held)."""
    with transaction.atomic():
        held = PayoutBatch.objects.filter(
            pk=batch.pk, status=PayoutBatch.Status.PREPARED, held_at__isnull=True
        ).update(
            held_by=moderator,
            held_at=timezone.now(),
            hold_reason=reason[:500],
            approved_by=None,
            approved_at=None,
        )
        if held:
            audit_record(
                actor=moderator,
                action="payout.hold",
                target=batch,
                details={"total": str(batch.total), "reason": reason},
            )
    return bool(held)


def payout_settings_update(
    *, approval_threshold: int | None, moderator: User, reason: str
) -> PayoutSettings:
    """Set the total above which batches wait for approval (None: no threshold), audited."""
    with transaction.atomic():
        row = PayoutSettings.objects.select_for_update().get_or_create(pk=1)[0]
        previous = row.approval_threshold
        row.approval_threshold = approval_threshold  # type: ignore[assignment]
        row.updated_by = moderator
        row.updated_at = timezone.now()
        row.save(update_fields=["approval_threshold", "updated_by", "updated_at"])
        audit_record(
            actor=moderator,
            action="payout.settings",
            target=row,
            details={
                "approval_threshold": {
                    "from": None if previous is None else str(previous),
                    "to": None if approval_threshold is None else str(approval_threshold),
                },
                "reason": reason,
            },
        )
    return row


def _may_submit(batch: PayoutBatch) -> bool:
    return batch_may_be_sent(batch)


def payouts_settle(*, client: ChainClient) -> SettlementReport:
    """Pay every due credit: finish interrupted batches first, then make new ones until none is due.

    With ``PAYOUT_REQUIRE_APPROVAL``, new batches wait, prepared, until a moderator approves them.
    Safe to run twice, concurrently, or after a crash at any point.
    """
    ledger_close_epochs()
    touched: list[PayoutBatch] = []
    waiting: list[PayoutBatch] = []
    elsewhere: list[PayoutBatch] = []
    for batch in PayoutBatch.objects.filter(status=PayoutBatch.Status.PREPARED).order_by("id"):
        if not _for_this_contract(batch, client):
            # Never sent (a batch is sent only once claimed as submitted): it can be dropped,
            # and its credits go into this contract's next batch.
            _mark_failed(
                batch,
                f"made for chain {batch.chain_id}, {batch.mode} contract {batch.token_address} "
                "and never sent; its credits go to the next batch",
                status=PayoutBatch.Status.PREPARED,
            )
            batch.refresh_from_db()
            touched.append(batch)
            continue
        if _may_submit(batch):
            batch = payout_batch_submit(batch=batch, client=client)
        # Still prepared: it waits for a moderator (held, or not approved, when it was claimed).
        (waiting if batch.status == PayoutBatch.Status.PREPARED else touched).append(batch)
    for batch in PayoutBatch.objects.filter(status=PayoutBatch.Status.SUBMITTED).order_by("id"):
        if not _for_this_contract(batch, client):
            elsewhere.append(batch)
            continue
        touched.append(payout_batch_reconcile(batch=batch, client=client))
    if all(b.status != PayoutBatch.Status.SUBMITTED for b in touched):
        while (prepared := payout_batch_prepare(client=client)) is not None:
            if not _may_submit(prepared):
                waiting.append(prepared)
                continue
            submitted = payout_batch_submit(batch=prepared, client=client)
            if submitted.status == PayoutBatch.Status.PREPARED:
                waiting.append(submitted)  # held while we were sending it
                continue
            reconciled = payout_batch_reconcile(batch=submitted, client=client)
            touched.append(reconciled)
            if reconciled.status != PayoutBatch.Status.CONFIRMED:
                break  # the chain isn't keeping up: leave the rest for the next run
    statuses = {b.batch_id: b.status for b in touched}
    return SettlementReport(
        confirmed=[k for k, v in statuses.items() if v == PayoutBatch.Status.CONFIRMED],
        pending=[k for k, v in statuses.items() if v == PayoutBatch.Status.SUBMITTED],
        failed=[k for k, v in statuses.items() if v == PayoutBatch.Status.FAILED],
        awaiting_approval=[b.batch_id for b in waiting],
        other_contract=[b.batch_id for b in elsewhere],
    )


def _for_this_contract(batch: PayoutBatch, client: ChainClient) -> bool:
    """Whether ``batch`` was made for ``client``'s chain and payout contract. One made for
    another (the contract was redeployed, or switched from minting to a distributor, while it was
    in flight) can't be read or sent through this client: its contract would say it was never
    processed, and its credits would be paid again."""
    same = (
        batch.chain_id == client.chain_id
        and batch.mode == (client.mode or MINT)
        and batch.token_address.lower() == (client.payout_address or "").lower()
    )
    if not same:
        logger.error(
            "payout batch %s was made for chain %s, %s contract %s; this client pays through "
            "chain %s, %s contract %s",
            batch.batch_id,
            batch.chain_id,
            batch.mode,
            batch.token_address,
            client.chain_id,
            client.mode or MINT,
            client.payout_address,
        )
    return same
