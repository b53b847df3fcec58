"""Decisions: turning an item's labels into an accepted label, and refitting the crowd's model.

Online, each item is decided from its own labels in O(its labels): the posterior of its classes
given the current confusion matrices of its labelers (``labeling.consensus.item_posterior``). The
item is accepted once that posterior reaches the project's threshold after ``overlap`` labels;
otherwise it asks for one more label, up to ``max_labels``, and then goes to the moderators' review
queue (adaptive redundancy: fewer labels where the crowd agrees). Periodically, a full fit of the
whole project (``project_refit``) re-estimates every labeler's confusion matrix and the class
priors, and re-decides the items still waiting.

What the online decision keeps from a fit cannot talk a clear vote out of its answer: each
labeler's rows and the class priors are shrunk toward a weak symmetric prior in proportion to the
evidence behind them, a labeler the fit hasn't seen is a one-coin labeler of
``CONSENSUS_DEFAULT_ACCURACY``, and no class is believed rarer than a tenth of its uniform share
(``labeling.consensus.incremental``). So a vote of fresh labelers with ``decisive_margin`` more
answers for one class than for any other decides the item whatever the last fit said.

An item that can't get its next label goes to review: at once when no contributor is left who
could give it (``item_labelers_left``), and after ``CONSENSUS_LABEL_WAIT_SECONDS`` without a new
label (``items_review_stalled``, run by Celery beat).

Majority vote keeps its own rule: a clear plurality after ``overlap`` labels wins; a tie asks for
one more label.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from config.broker import task_send
from config.metrics import DECISION_LATENCY
from labeling.answers import agrees
from labeling.answers import summary as answer_summary
from labeling.consensus import (
    TORCH_METHODS,
    aggregate,
    agreement,
    bounded_priors,
    capped_confusion,
    class_priors,
    item_posterior,
    labeler_confusions,
    one_coin,
)
from labeling.models import (
    Annotation,
    ConsensusFit,
    ConsensusMethod,
    DecisionDue,
    Item,
    Project,
    WorkerSkill,
)
from labeling.models import (
    Decision as DecisionRecord,
)
from labeling.selectors import contributors_able_to_label, item_labelers_left
from labeling.services.items import AnnotationError
from labeling.services.shapes import GEOMETRIC_MAJORITY, box_vote, multilabel_vote, span_vote
from moderation.selectors import users_excluded_from_consensus, users_on_probation
from rewards.models import LedgerEntry
from rewards.selectors import item_credits_unpaid


@dataclass(frozen=True)
class Decision:
    """The crowd's answer for one item: a label, or ``None`` while it is not sure enough; for
    the set tasks (multi-label, boxes, spans) ``value`` is the decided answer and ``label`` its
    summary."""

    label: str | None
    confidence: float
    agreement: float
    value: dict[str, Any] | None = None


# How many answers the weak one-coin prior of a fitted labeler's confusion row is worth: a row the
# fit saw two answers for is half the labeler's own estimate, a row with no evidence is the prior.
LABELER_PRIOR_STRENGTH = 2.0


def majority_vote(labels: list[str]) -> Decision:
    """Plurality of the labels; a tie for first place decides nothing."""
    counts = Counter(labels).most_common()
    if not counts:
        return Decision(label=None, confidence=0.0, agreement=0.0)
    top_label, top_count = counts[0]
    share = top_count / len(labels)
    if len(counts) > 1 and counts[1][1] == top_count:
        return Decision(label=None, confidence=share, agreement=share)
    return Decision(label=top_label, confidence=share, agreement=share)


@dataclass(frozen=True)
class VoteContext:
    """What ``model_vote`` reads besides an item's answers: the project's last fit (``None`` if
    there is none, or it no longer fits the classes), the fitted labelers' confusion rows and
    accuracies, and who is on probation. Read once for a batch of items."""

    fit: ConsensusFit | None
    known: dict[int, tuple[list[list[float]], float]]
    probation: set[int]


def vote_context(project: Project, user_ids: set[int]) -> VoteContext:
    """``model_vote``'s reads for ``project`` and the labelers ``user_ids``."""
    k = len(project.classes)
    fit = ConsensusFit.objects.filter(project=project).first()
    if fit is not None and len(fit.priors) != k:
        fit = None  # the classes changed since the last fit: its estimates no longer apply
    known = (
        {
            user_id: (confusion, accuracy)
            for user_id, confusion, accuracy in WorkerSkill.objects.filter(
                project=project, user_id__in=list(user_ids)
            ).values_list("user_id", "confusion", "accuracy")
            if len(confusion) == k
        }
        if fit is not None and user_ids
        else {}
    )
    return VoteContext(fit=fit, known=known, probation=users_on_probation(user_ids))


def model_vote(
    project: Project, answers: list[tuple[int, str]], context: VoteContext | None = None
) -> Decision:
    """The posterior decision from the labelers' current confusion matrices.

    A labeler the last fit hasn't seen is a one-coin labeler of ``CONSENSUS_DEFAULT_ACCURACY``;
    the fit's class priors are bounded (``bounded_priors``) and its calibration floor applied.
    ``context``: ``vote_context`` for these labelers, when the caller has read it already.
    """
    classes: list[str] = project.classes
    k = len(classes)
    index = {name: i for i, name in enumerate(classes)}
    answers = [(user_id, label) for user_id, label in answers if label in index]
    if not answers:
        return Decision(label=None, confidence=0.0, agreement=0.0)
    if context is None:
        context = vote_context(project, {u for u, _ in answers})
    fit = context.fit
    priors = bounded_priors(fit.priors if fit is not None else [1.0] * k)
    unseen = one_coin(settings.CONSENSUS_DEFAULT_ACCURACY, k).tolist()
    # A labeler on probation weighs as one of CONSENSUS_PROBATION_ACCURACY at most (0.75: three
    # new wallets agreeing reach 0.964 on two classes, 3 to 1 doesn't). What such a group can be
    # paid is capped (PROBATION_PAYOUT_CAP) until its gold record earns trust.
    probation_accuracy = settings.CONSENSUS_PROBATION_ACCURACY
    trial: list[list[float]] = one_coin(probation_accuracy, k).tolist()

    def confusion_of(user_id: int) -> list[list[float]]:
        confusion, accuracy = context.known.get(
            user_id, (unseen, settings.CONSENSUS_DEFAULT_ACCURACY)
        )
        if user_id not in context.probation:
            return [[float(x) for x in row] for row in confusion]
        if accuracy > probation_accuracy:
            return trial
        # Less accurate overall, but rows can still make one answer near final (a wallet that
        # never gives it but for one class): no answer weighs more than the trial labeler's.
        rows = [[float(x) for x in row] for row in confusion]
        capped: list[list[float]] = capped_confusion(rows, probation_accuracy).tolist()
        return capped

    confusions = np.array([confusion_of(user_id) for user_id, _ in answers], dtype=np.float64)
    codes = np.array([index[label] for _, label in answers])
    floor = min(max(fit.calibration_floor, 0.0), 1.0) if fit is not None else 0.0
    posterior = item_posterior(confusions, priors, np.arange(len(answers)), codes, floor=floor)
    best = int(np.argmax(posterior))
    confidence = float(posterior[best])
    agreement = float(np.mean(codes == best))
    if confidence < project.acceptance_threshold:
        return Decision(label=None, confidence=confidence, agreement=agreement)
    return Decision(label=classes[best], confidence=confidence, agreement=agreement)


SET_TASKS = {Project.Task.MULTILABEL, Project.Task.BOXES, Project.Task.SPANS}


def _decide(
    item: Item,
    answers: list[tuple[int, str, dict[str, Any]]],
    context: VoteContext | None = None,
) -> Decision:
    project = item.project
    if project.task in SET_TASKS:
        if project.task == Project.Task.MULTILABEL:
            value, confidence, agreement = multilabel_vote(project, answers)
            sure = confidence >= project.acceptance_threshold
        else:
            vote = box_vote(project, answers) if project.task == Project.Task.BOXES else None
            value, confidence, agreement = vote or span_vote(project, item.text, answers)
            sure = confidence >= GEOMETRIC_MAJORITY
        if not sure:
            return Decision(label=None, confidence=confidence, agreement=agreement)
        summary = answer_summary(project.task, value)
        return Decision(label=summary, confidence=confidence, agreement=agreement, value=value)
    pairs = [(user, label) for user, label, _ in answers]
    if project.consensus_method == ConsensusMethod.MAJORITY_VOTE:
        return majority_vote([label for _, label in pairs])
    return model_vote(project, pairs, context)


# An item's annotation as its decision reads it: (pk, annotator_id, label, value, created_at).
AnswerRow = tuple[int, int, str, dict[str, Any], datetime]


def item_decide(*, item_id: int, reopen_review: bool = False) -> Item:
    """Decide an item from its labels; safe to run twice and concurrently (``items_decide`` of
    one item). Raises ``Item.DoesNotExist`` for an item that isn't there."""
    items = items_decide(item_ids=[item_id], reopen_review=reopen_review)
    if not items:
        raise Item.DoesNotExist(f"no item {item_id}")
    return items[0]


def items_decide(*, item_ids: Iterable[int], reopen_review: bool = False) -> list[Item]:
    """Decide items from their labels, in one transaction; safe to run twice and concurrently.

    Accepting records a ``Decision`` whose credits (the item's contributor and the agreeing
    labelers) the rewards app writes after the commit. Not sure yet: one more label is asked
    for, up to ``max_labels``, then the review queue; the review queue at once if no contributor
    is left who could give that label. With ``reopen_review``, an item in review is accepted if
    the current model is now sure of it. Gold items are never decided: their answer is known.
    Returns the items found, locked and updated, by id.
    """
    with transaction.atomic():
        return _items_decide_locked(sorted(set(item_ids)), reopen_review=reopen_review)


def items_decide_due(*, batch: int | None = None, budget_seconds: float = 20.0) -> tuple[int, bool]:
    """Decide the items in the decisions' queue (``DecisionDue``), ``batch`` at a time (default
    ``DECISIONS_BATCH``): each batch is claimed and decided in one transaction, so a crash
    leaves its items queued; concurrent callers claim different items (``SKIP LOCKED``). Stops
    when the queue is empty or after ``budget_seconds``. Returns how many items it took from the
    queue, and whether it stopped for the budget with more to do."""
    size = batch or settings.DECISIONS_BATCH
    started = time.monotonic()
    taken = 0
    while True:
        if time.monotonic() - started >= budget_seconds:
            return taken, True
        with transaction.atomic():
            claimed = list(
                DecisionDue.objects.select_for_update(skip_locked=True)
                .order_by("item_id")
                .values_list("item_id", flat=True)[:size]
            )
            if not claimed:
                break
            DecisionDue.objects.filter(item_id__in=claimed).delete()
            _items_decide_locked(claimed, reopen_review=False)
        taken += len(claimed)
        if len(claimed) < size:
            break
    return taken, False


def _items_decide_locked(item_ids: list[int], *, reopen_review: bool) -> list[Item]:
    """``items_decide`` inside the caller's transaction: locks the items (in id order, so
    concurrent batches can't deadlock), reads their answers, the labelers left out of consensus
    and the model's inputs once per project, and writes each kind of change in one statement."""
    items = list(
        Item.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk__in=item_ids)
        .order_by("id")
    )
    allowed = {Item.Status.OPEN, Item.Status.REVIEW} if reopen_review else {Item.Status.OPEN}
    waiting = [item for item in items if item.status in allowed and not item.gold_label]
    if not waiting:
        return items
    rows: dict[int, list[AnswerRow]] = defaultdict(list)
    for item_id, *row in (
        Annotation.objects.filter(item_id__in=[item.pk for item in waiting])
        .order_by("id")
        .values_list("item_id", "pk", "annotator_id", "label", "value", "created_at")
    ):
        rows[item_id].append(tuple(row))
    labelers: dict[int, set[int]] = defaultdict(set)
    for item in waiting:
        labelers[item.project_id].update(row[1] for row in rows[item.pk])
    projects = {item.project_id: item.project for item in waiting}
    excluded = {
        project_id: users_excluded_from_consensus(project=projects[project_id], user_ids=users)
        for project_id, users in labelers.items()
    }
    contexts: dict[int, VoteContext] = {}

    def context_of(project: Project) -> VoteContext | None:
        if project.task in SET_TASKS or project.consensus_method == ConsensusMethod.MAJORITY_VOTE:
            return None
        if project.pk not in contexts:
            contexts[project.pk] = vote_context(project, labelers[project.pk])
        return contexts[project.pk]

    writes = _Writes()
    for item in waiting:
        _decide_locked(item, rows[item.pk], excluded[item.project_id], context_of, writes)
    writes.flush()
    return items


def _decide_locked(
    item: Item,
    rows: list[AnswerRow],
    excluded: set[int],
    context_of: Callable[[Project], VoteContext | None],
    writes: _Writes,
) -> None:
    """One item's decision, its changes left in ``writes``."""
    if _exclusions_changed(item, sum(row[1] in excluded for row in rows)):
        writes.changed(item, "required_labels", "excluded_labels")
    if len(rows) < item.required_labels:
        return
    answers = [(user, label, value) for _, user, label, value, _ in rows if user not in excluded]
    if not answers:
        return
    last_label_at = max(row[4] for row in rows)
    decision = _decide(item, answers, context_of(item.project))
    item.confidence = decision.confidence
    item.agreement = decision.agreement
    writes.changed(item, "confidence", "agreement")
    counted_required = item.required_labels - item.excluded_labels
    if decision.label is not None:
        writes.accept(
            item,
            decision.label,
            value=decision.value,
            decided_by=DecisionRecord.DecidedBy.CROWD,
            rows=[row[:4] for row in rows],
            excluded=excluded,
        )
        _observe_decision_latency(last_label_at)
    elif item.status == Item.Status.REVIEW:
        pass  # it stays in review, with its confidence and agreement updated
    elif counted_required < item.project.max_labels and item_labelers_left(item=item):
        item.required_labels += 1
        writes.changed(item, "required_labels")
    elif counted_required < item.project.max_labels:
        item.status = Item.Status.REVIEW
        writes.changed(item, "status")
        audit_record(
            actor=None,
            action="item.review_stalled",
            target=item,
            details={"reason": "no contributor left to label it"},
        )
    else:
        item.status = Item.Status.REVIEW
        writes.changed(item, "status")
        _observe_decision_latency(last_label_at)


def _exclusions_changed(item: Item, excluded_now: int) -> bool:
    """Keep ``required_labels`` making up for the item's answers left out of consensus (banned
    or flagged labelers): one more answer wanted for each, one fewer when a flag is dismissed.
    Returns whether the item changed (the caller saves it)."""
    if excluded_now == item.excluded_labels:
        return False
    item.required_labels = max(1, item.required_labels + excluded_now - item.excluded_labels)
    item.excluded_labels = excluded_now
    return True


def _observe_decision_latency(last_label_at: datetime) -> None:
    """Label-to-decision time, for /metrics; recorded once the decision is committed."""
    seconds = (timezone.now() - last_label_at).total_seconds()
    transaction.on_commit(lambda: DECISION_LATENCY.observe(max(0.0, seconds)))


def decisions_credit_enqueue(decision_ids: list[int]) -> None:
    """Ask the rewards app to turn recorded decisions into ledger entries (one Celery task, by
    name: labeling records facts, it never moves money). With the broker down, the periodic
    ``credit-pending-decisions`` sweep credits them."""
    task_send("rewards.tasks.credit_decisions", args=(decision_ids,))


def decided_value_of(item: Item, label: str, value: dict[str, Any] | None) -> dict[str, Any]:
    """A decision in its task's shape: ``value`` for the set tasks, else from the label."""
    if value is not None:
        return value
    if item.project.task == Project.Task.PAIRWISE:
        return {"choice": label}
    return {"label": label}


@dataclass
class _Acceptance:
    item: Item
    label: str
    decided: dict[str, Any]
    decided_by: str
    moderator: User | None
    agreeing: list[tuple[int, int]]


class _Writes:
    """The changes of a batch of decisions (its items locked by the caller's transaction): each
    item's changed fields, and the acceptances to record. ``flush`` writes the items in one
    statement and the ``Decision`` records in another, and enqueues their credits on commit."""

    def __init__(self) -> None:
        self.items: dict[int, Item] = {}
        self.fields: set[str] = set()
        self.acceptances: list[_Acceptance] = []

    def changed(self, item: Item, *fields: str) -> None:
        self.items[item.pk] = item
        self.fields.update(fields)

    def accept(
        self,
        item: Item,
        label: str,
        *,
        decided_by: str,
        value: dict[str, Any] | None = None,
        moderator: User | None = None,
        rows: list[tuple[Any, ...]] | None = None,
        excluded: set[int] | None = None,
    ) -> None:
        """Accept ``label`` for ``item`` (its ``confidence`` and ``agreement`` set). The answers
        that agree with it (per the task: ``labeling.answers.agrees``) are the ones its credit
        pays. ``rows``: the item's annotations as ``(pk, annotator_id, label, value)`` by id and
        ``excluded`` the labelers left out of consensus, when the caller has read them under
        the same lock."""
        decided = decided_value_of(item, label, value)
        item.status = Item.Status.ACCEPTED
        item.decided_label = label
        item.decided_value = decided
        item.decision_version += 1
        item.decided_at = timezone.now()
        self.changed(
            item,
            "status",
            "decided_label",
            "decided_value",
            "decision_version",
            "agreement",
            "confidence",
            "decided_at",
        )
        if item.withdrawn_at is not None or item.withdrawn_reason:
            # A record again: buyers' syncs get it as a record, no longer as a tombstone.
            item.withdrawn_at, item.withdrawn_reason = None, ""
            self.changed(item, "withdrawn_at", "withdrawn_reason")
        agreeing = _agreeing_answers(item, decided, rows, excluded)
        self.acceptances.append(_Acceptance(item, label, decided, decided_by, moderator, agreeing))

    def flush(self) -> list[DecisionRecord]:
        if self.items:
            _items_update(list(self.items.values()), sorted(self.fields))
        if not self.acceptances:
            return []
        users: dict[int, set[int]] = defaultdict(set)
        for acceptance in self.acceptances:
            users[acceptance.item.project_id].update(user for _, user in acceptance.agreeing)
        accuracy: dict[tuple[int, int], float] = {}
        for project_id, user_ids in users.items():
            for user_id, value in WorkerSkill.objects.filter(
                project_id=project_id, user_id__in=list(user_ids)
            ).values_list("user_id", "accuracy"):
                accuracy[project_id, user_id] = value
        records = DecisionRecord.objects.bulk_create(
            [
                DecisionRecord(
                    item=a.item,
                    version=a.item.decision_version,
                    label=a.label,
                    value=a.decided,
                    posterior=1.0 if a.item.confidence is None else a.item.confidence,
                    agreement=a.item.agreement,
                    method=a.item.project.consensus_method,
                    decided_by=a.decided_by,
                    moderator=a.moderator,
                    n_classes=len(a.item.project.classes),
                    agreeing=[
                        {
                            "annotation": pk,
                            "user": user,
                            "accuracy": accuracy.get((a.item.project_id, user)),
                        }
                        for pk, user in a.agreeing
                    ],
                )
                for a in self.acceptances
            ]
        )
        ids = [record.pk for record in records]
        transaction.on_commit(lambda: decisions_credit_enqueue(ids))
        return records


def _items_update(items: list[Item], fields: list[str]) -> None:
    """Write ``fields`` of ``items``, one statement: ``bulk_update``, except on PostgreSQL, where
    Django's CASE expression per field and row cost ~0.7 ms of CPU per item, and an UPDATE joined
    to the rows' VALUES costs a small part of that."""
    if connection.vendor != "postgresql":
        Item.objects.bulk_update(items, fields)
        return
    columns = [field for field in Item._meta.concrete_fields if field.name in fields]
    quote = connection.ops.quote_name
    row = "(%s" + ", %s" * len(columns) + ")"
    params: list[Any] = []
    for item in items:
        params.append(item.pk)
        params += [c.get_db_prep_save(getattr(item, c.attname), connection) for c in columns]
    names = ", ".join(quote(str(c.column)) for c in columns)
    assignments = ", ".join(
        f"{quote(str(c.column))} = v.{quote(str(c.column))}::{c.db_type(connection)}"
        for c in columns
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Item._meta.db_table)} AS t SET {assignments} "
            f"FROM (VALUES {', '.join([row] * len(items))}) AS v(id, {names}) "
            "WHERE t.id = v.id",
            params,
        )


def _accept(
    item: Item,
    label: str,
    *,
    decided_by: str,
    value: dict[str, Any] | None = None,
    moderator: User | None = None,
) -> DecisionRecord:
    """Record an item's (new) decision, as the item's state and as a ``Decision`` fact whose
    credit is enqueued on commit; inside the deciding transaction, with the item locked and its
    ``confidence`` and ``agreement`` set (``_Writes.accept`` of one item)."""
    writes = _Writes()
    writes.accept(item, label, decided_by=decided_by, value=value, moderator=moderator)
    [record] = writes.flush()
    return record


def _share_agreeing(item: Item, label: str) -> float | None:
    """The share of the item's labels equal to ``label`` (None for an unlabeled item)."""
    labels = list(item.annotations.values_list("label", flat=True))
    return labels.count(label) / len(labels) if labels else None


def item_override(*, item: Item, label: str, moderator: User) -> Item:
    """A moderator decides an item by hand (from the review queue, or one still open)."""
    if label not in item.project.classes:
        raise AnnotationError(f"unknown class {label!r}")
    with transaction.atomic():
        locked = Item.objects.select_for_update().select_related("project").get(pk=item.pk)
        if locked.status == Item.Status.ACCEPTED:
            raise AnnotationError("the item is already accepted", conflict=True)
        locked.agreement = _share_agreeing(locked, label)
        locked.confidence = 1.0
        _accept(locked, label, decided_by=DecisionRecord.DecidedBy.MODERATOR, moderator=moderator)
        audit_record(
            actor=moderator, action="item.override", target=locked, details={"label": label}
        )
    return locked


def item_redecide(*, item_id: int, label: str, confidence: float) -> bool:
    """Change an accepted item's label to the refit's, if none of its credits is in a payout yet
    and no moderator decided it (a moderator's decision stands: the refit reads the answers the
    moderator overruled).

    Records the new decision; the rewards app then reverses the old decision's label credits and
    credits the labelers who agree with the new label (settlement holds the item's credits until
    it has). Returns whether the item changed.
    """
    with transaction.atomic():
        item = Item.objects.select_for_update().select_related("project").get(pk=item_id)
        if item.status != Item.Status.ACCEPTED or item.decided_label == label or item.gold_label:
            return False
        # Lock the item's credits: a settlement allocating them waits for us, or we see it did.
        # In id order, as an epoch close locks them (explicit, not left to Meta.ordering).
        list(
            LedgerEntry.objects.select_for_update()
            .filter(item=item)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not item_credits_unpaid(item=item):
            return False
        current = DecisionRecord.objects.filter(item=item, version=item.decision_version).first()
        if current is not None and current.decided_by == DecisionRecord.DecidedBy.MODERATOR:
            return False
        previous = item.decided_label
        item.confidence = confidence
        item.agreement = _share_agreeing(item, label)
        _accept(item, label, decided_by=DecisionRecord.DecidedBy.REFIT)
        audit_record(
            actor=None, action="item.redecide", target=item, details={"from": previous, "to": label}
        )
    return True


def item_recheck(*, item_id: int, reason: str) -> str:
    """Decide an accepted, unpaid item again from the answers that count now (after a ban, or a
    flag raised or dismissed): a new decision whose credits replace the old ones, the same label
    with a different set of agreeing answers included; or, if what remains isn't sure, the item
    goes back to collecting answers and its credits are reversed. Nothing already in a payout is
    touched. Returns what happened: "unchanged", "redecided", "reopened" or "paid"."""
    with transaction.atomic():
        item = Item.objects.select_for_update().select_related("project").get(pk=item_id)
        if item.status != Item.Status.ACCEPTED or item.gold_label:
            return "unchanged"
        # Lock the item's credits: a settlement allocating them waits for us, or we see it did.
        # In id order, as an epoch close locks them (explicit, not left to Meta.ordering).
        list(
            LedgerEntry.objects.select_for_update()
            .filter(item=item)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not item_credits_unpaid(item=item):
            return "paid"
        current = DecisionRecord.objects.filter(item=item, version=item.decision_version).first()
        if current is not None and current.decided_by == DecisionRecord.DecidedBy.MODERATOR:
            return "unchanged"  # a moderator's decision stands whoever labeled the item
        rows = list(item.annotations.order_by("id").values_list("annotator_id", "label", "value"))
        excluded = users_excluded_from_consensus(
            project=item.project, user_ids={row[0] for row in rows}
        )
        _exclusions_changed(item, sum(row[0] in excluded for row in rows))
        answers = [row for row in rows if row[0] not in excluded]
        enough = len(rows) >= item.required_labels
        decision = _decide(item, answers) if answers and enough else Decision(None, 0.0, 0.0)
        previous = item.decided_label
        if decision.label is None:
            _withdraw(item, decision, reason, _withdrawn_reason(rows, excluded))
            return "reopened"
        agreeing_before = sorted(a["annotation"] for a in current.agreeing) if current else None
        item.confidence, item.agreement = decision.confidence, decision.agreement
        item.save(update_fields=["required_labels", "excluded_labels"])
        if decision.label == previous and agreeing_before is not None:
            still = _agreeing_now(item, decision)
            if sorted(still) == agreeing_before:
                return "unchanged"
        _accept(
            item, decision.label, value=decision.value, decided_by=DecisionRecord.DecidedBy.RECHECK
        )
        audit_record(
            actor=None,
            action="item.recheck",
            target=item,
            details={"from": previous, "to": decision.label, "reason": reason},
        )
    return "redecided"


def _agreeing_now(item: Item, decision: Decision) -> list[int]:
    """The answers that would be credited if ``decision`` were accepted now."""
    decided = decided_value_of(item, decision.label or "", decision.value)
    return [pk for pk, _ in _agreeing_answers(item, decided)]


def _agreeing_answers(
    item: Item,
    decided: dict[str, Any],
    rows: list[tuple[Any, ...]] | None = None,
    excluded: set[int] | None = None,
) -> list[tuple[int, int]]:
    """The item's answers that agree with ``decided`` (per the task:
    ``labeling.answers.agrees``), as ``(annotation, labeler)``: the ones its credit pays.
    ``rows``: the item's annotations as ``(pk, annotator_id, label, value)`` by id and
    ``excluded`` the labelers left out of consensus, when the caller has read them under the
    item's lock."""
    project = item.project
    if rows is None or excluded is None:
        rows = list(
            item.annotations.order_by("id").values_list("pk", "annotator_id", "label", "value")
        )
        excluded = users_excluded_from_consensus(project=project, user_ids={row[1] for row in rows})
    return [
        (pk, user)
        for pk, user, answer_label, answer in rows
        # A banned or flagged labeler's answer is neither counted nor paid.
        if user not in excluded
        # Rows stored without a value (history, imports) are classifications by their label.
        and agrees(
            project.task,
            answer or decided_value_of(item, answer_label, None),
            decided,
            project.agreement_threshold,
        )
    ]


def _withdrawn_reason(rows: list[tuple[Any, ...]], excluded: set[int]) -> str:
    """Why a recheck took an item's record back, for buyers' tombstones, from the answers left
    out of its consensus now (``rows`` start with the labeler): a banned labeler's, else a
    labeler's held by a fraud flag, else none (answers counted again, after a flag was dismissed
    or a ban lifted, no longer agree enough)."""
    left_out = {row[0] for row in rows} & excluded
    if not left_out:
        return Item.WithdrawnReason.REOPENED
    if User.objects.filter(pk__in=left_out, banned_at__isnull=False).exists():
        return Item.WithdrawnReason.BANNED_LABELER
    return Item.WithdrawnReason.FRAUD_FLAG


def _withdraw(item: Item, decision: Decision, reason: str, withdrawn_reason: str) -> None:
    """Take back an item's acceptance (inside the caller's transaction, item and credits
    locked): it collects answers again, and a decision without a label is recorded, whose credit
    reverses the previous decision's label credits. The one place an accepted record leaves the
    dataset: ``withdrawn_at`` and ``withdrawn_reason`` are stamped here, for buyers' tombstones
    (``market.records``), and cleared when the item is accepted again (``_Writes.accept``)."""
    previous = item.decided_label
    item.status = Item.Status.OPEN
    item.decided_label = ""
    item.decided_value = {}
    item.decided_at = None
    item.withdrawn_at = timezone.now()
    item.withdrawn_reason = withdrawn_reason
    item.decision_version += 1
    item.confidence, item.agreement = decision.confidence, decision.agreement
    # At least one more counted answer is wanted before it is decided again.
    counted = item.label_count - item.excluded_labels
    item.required_labels = max(item.required_labels, item.label_count + 1, counted + 1)
    item.save(
        update_fields=[
            "status",
            "decided_label",
            "decided_value",
            "decided_at",
            "withdrawn_at",
            "withdrawn_reason",
            "decision_version",
            "confidence",
            "agreement",
            "required_labels",
            "excluded_labels",
        ]
    )
    record = DecisionRecord.objects.create(
        item=item,
        version=item.decision_version,
        label="",
        value={},
        posterior=decision.confidence,
        agreement=decision.agreement,
        method=item.project.consensus_method,
        decided_by=DecisionRecord.DecidedBy.RECHECK,
        n_classes=len(item.project.classes),
        agreeing=[],
    )
    transaction.on_commit(lambda: decisions_credit_enqueue([record.pk]))
    audit_record(
        actor=None,
        action="item.reopen",
        target=item,
        details={"from": previous, "reason": reason},
    )


def project_refit(*, project_id: int, device: str = "cpu") -> ConsensusFit | None:
    """Fit the project's consensus model on all its labels, store every labeler's skill and
    confusion matrix and the class priors (shrunk for online decisions), then re-decide the items
    still waiting.

    Gold items (with a known answer) anchor the fit, and calibrate it (``calibration_floor``,
    ``bayes_ds``). Returns ``None`` for a project without labels.
    """
    project = Project.objects.get(pk=project_id)
    classes: list[str] = project.classes
    index = {name: i for i, name in enumerate(classes)}
    answers = list(
        Annotation.objects.filter(item__project=project).values_list(
            "item_id", "annotator_id", "label"
        )
    )
    # Banned and flagged labelers' answers are left out of the model as out of each decision.
    excluded = users_excluded_from_consensus(project=project, user_ids={a[1] for a in answers})
    rows = [
        (item_id, user_id, index[label])
        for item_id, user_id, label in answers
        if label in index and user_id not in excluded
    ]
    if not rows:
        return None
    table = np.array(rows, dtype=np.int64)
    item_ids, tasks = np.unique(table[:, 0], return_inverse=True)
    user_ids, workers = np.unique(table[:, 1], return_inverse=True)
    task_of = {int(item_id): code for code, item_id in enumerate(item_ids)}
    gold_items = dict(
        Item.objects.filter(project=project).exclude(gold_label="").values_list("id", "gold_label")
    )
    gold = {task_of[i]: index[g] for i, g in gold_items.items() if i in task_of and g in index}
    method = project.consensus_method
    if method not in TORCH_METHODS:
        device = "cpu"
    started = time.perf_counter()
    result = aggregate(
        tasks,
        workers,
        table[:, 2],
        n_classes=len(classes),
        method=method,
        device=device,
        gold=gold or None,
    )
    seconds = time.perf_counter() - started
    # Stored as None where undefined (NaN can't go through JSON).
    agreement_now = {
        name: None if np.isnan(value) else value
        for name, value in agreement(tasks, workers, table[:, 2], len(classes)).items()
    }

    counts = np.bincount(workers, minlength=len(user_ids))
    gold_rows = np.array([int(i) in gold_items for i in table[:, 0]])
    gold_truth = np.array([index.get(gold_items.get(int(i), ""), -1) for i in table[:, 0]])
    gold_answered = np.bincount(workers[gold_rows], minlength=len(user_ids))
    gold_correct = np.bincount(
        workers[gold_rows & (gold_truth == table[:, 2])], minlength=len(user_ids)
    )
    now = timezone.now()
    # Online, each labeler is their soft counts in this fit plus a weak one-coin prior; a row the
    # fit saw no evidence for stays informative (see labeling.consensus.labeler_confusions).
    confusions = labeler_confusions(
        tasks,
        workers,
        table[:, 2],
        result.posteriors,
        len(user_ids),
        settings.CONSENSUS_DEFAULT_ACCURACY,
        LABELER_PRIOR_STRENGTH,
    )
    skills: list[WorkerSkill] = []
    for code, user_id in enumerate(user_ids):
        accuracy = float(result.worker_skill[code])
        if np.isnan(accuracy):
            continue
        skills.append(
            WorkerSkill(
                project=project,
                user_id=int(user_id),
                accuracy=accuracy,
                confusion=confusions[code].tolist(),
                label_count=int(counts[code]),
                gold_answered=int(gold_answered[code]),
                gold_correct=int(gold_correct[code]),
                updated_at=now,
            )
        )
    labeled = result.labels >= 0
    priors = class_priors(result.posteriors[labeled])
    weights = np.array([s.label_count for s in skills], dtype=np.float64)
    default_confusion = (
        np.average(np.array([s.confusion for s in skills]), axis=0, weights=weights).tolist()
        if skills
        else one_coin(settings.CONSENSUS_DEFAULT_ACCURACY, len(classes)).tolist()
    )
    with transaction.atomic():
        WorkerSkill.objects.bulk_create(
            skills,
            update_conflicts=True,
            unique_fields=["project", "user"],
            update_fields=[
                "accuracy",
                "confusion",
                "label_count",
                "gold_answered",
                "gold_correct",
                "updated_at",
            ],
        )
        fit, _ = ConsensusFit.objects.update_or_create(
            project=project,
            defaults={
                "method": method,
                "priors": priors.tolist(),
                "default_confusion": default_confusion,
                "calibration_floor": result.calibration_floor,
                "iterations": result.iterations,
                "converged": result.converged,
                "label_count": len(rows),
                "device": device,
                "seconds": seconds,
                "fitted_at": now,
                **agreement_now,
            },
        )
    waiting = Item.objects.filter(
        project=project, gold_label="", status__in=[Item.Status.OPEN, Item.Status.REVIEW]
    )
    waiting_ids = list(waiting.values_list("id", flat=True))
    for start in range(0, len(waiting_ids), settings.DECISIONS_BATCH):
        items_decide(
            item_ids=waiting_ids[start : start + settings.DECISIONS_BATCH], reopen_review=True
        )
    if method != ConsensusMethod.MAJORITY_VOTE:
        _redecide_accepted(project, result.labels, result.posteriors, task_of, classes)
    return fit


def _redecide_accepted(
    project: Project,
    labels: np.ndarray,
    posteriors: np.ndarray,
    task_of: dict[int, int],
    classes: list[str],
) -> None:
    """Accepted items the refit now labels otherwise, with confidence, are re-decided while unpaid,
    if the online rule agrees.

    The batch fit trusts every labeler by their fitted skill; the online rule (``_decide``) also
    caps labelers on probation and bounds the class priors. Requiring both keeps a ring of new
    wallets that agree with each other, and so fit well, from relabeling accepted items that
    established labelers decided: the refit alone would let it.
    """
    accepted = Item.objects.filter(
        project=project, gold_label="", status=Item.Status.ACCEPTED
    ).values_list("id", "decided_label")
    changed: dict[int, tuple[str, float]] = {}
    for item_id, decided in accepted:
        task = task_of.get(item_id)
        if task is None or labels[task] < 0:
            continue
        label = classes[int(labels[task])]
        confidence = float(posteriors[task, labels[task]])
        if label != decided and confidence >= project.acceptance_threshold:
            changed[item_id] = (label, confidence)
    for item in Item.objects.filter(pk__in=list(changed)).select_related("project"):
        label, confidence = changed[item.pk]
        rows = list(item.annotations.order_by("id").values_list("annotator_id", "label", "value"))
        excluded = users_excluded_from_consensus(project=project, user_ids={row[0] for row in rows})
        if _decide(item, [row for row in rows if row[0] not in excluded]).label != label:
            continue
        item_redecide(item_id=item.pk, label=label, confidence=confidence)


def items_review_stalled(*, now: datetime | None = None) -> int:
    """Send to the review queue every open item of an open project that can't get its next label:
    no contributor is left who could give it one (``item_labelers_left``), or it has waited longer
    than ``CONSENSUS_LABEL_WAIT_SECONDS`` (0: never) since its last label, or its upload if it has
    none, or its project's reopening if that came later (a pause is nobody's failure to label).
    Gold items and items with all the labels they asked for are left alone. Audited; safe to run
    twice and concurrently (a conditional update claims each item). Returns how many moved.
    """
    now = now or timezone.now()
    waiting = Item.objects.filter(
        status=Item.Status.OPEN,
        gold_label="",
        project__is_open=True,
        label_count__lt=F("required_labels"),
    )
    reasons: dict[int, str] = {}
    wait = settings.CONSENSUS_LABEL_WAIT_SECONDS
    try:
        cutoff = now - timedelta(seconds=wait) if wait else None
    except OverflowError:  # longer than the calendar goes back: no item has waited that long
        cutoff = None
    if cutoff is not None:
        for item_id in (
            waiting.alias(
                last_label=Greatest(
                    Coalesce(Max("annotations__created_at"), F("created_at")),
                    Coalesce(F("project__reopened_at"), F("created_at")),
                )
            )
            .filter(last_label__lt=cutoff)
            .values_list("id", flat=True)
        ):
            reasons[item_id] = f"no new label for {wait} s"
    # An item can only run out of labelers when the uploader, its labelers and its skippers could
    # be all of them: check those few one by one.
    able = contributors_able_to_label().count()
    short = (
        waiting.exclude(pk__in=list(reasons))
        .alias(skipped=Count("skips", distinct=True))
        .alias(headroom=F("required_labels") + F("skipped") + 1)
        .filter(headroom__gt=able)
    )
    for item in short:
        if not item_labelers_left(item=item):
            reasons[item.pk] = "no contributor left to label it"
    moved = 0
    for item_id, reason in reasons.items():
        with transaction.atomic():
            claimed = Item.objects.filter(
                pk=item_id, status=Item.Status.OPEN, label_count__lt=F("required_labels")
            ).update(status=Item.Status.REVIEW)
            if claimed:
                audit_record(
                    actor=None,
                    action="item.review_stalled",
                    target=Item(pk=item_id),
                    details={"reason": reason},
                )
                moved += 1
    return moved
