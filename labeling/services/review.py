"""A moderator's decisions on the review queue: accept with a chosen label, reject, or send the
item back to the crowd for more labels.

Each takes the moderator's reason, locks the item (``select_for_update``), changes it in one
transaction and writes its audit entry in that transaction. Money moves only through the
decision machinery (``decisions._accept`` via ``item_override``): an accepted item records one
``Decision`` whose credit the rewards app writes once (``DecisionCredit`` is one-to-one), so an
action run twice (a double click, two moderators) is refused by the status check, never paid
twice. Rejecting and sending back credit nobody.
"""

from __future__ import annotations

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import User
from labeling.models import Item, Project
from labeling.services.decisions import item_override
from labeling.services.items import AnnotationError

# Tasks whose decision is one class (or one side of a pair), so a moderator can pick it.
LABEL_TASKS = {Project.Task.CLASSIFY, Project.Task.PAIRWISE}
REASON_MAX = 500


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise AnnotationError("give a reason: it is recorded in the audit trail")
    return reason[:REASON_MAX]


def _lock_in_review(item: Item, *, allowed: set[str]) -> Item:
    locked = Item.objects.select_for_update().select_related("project").get(pk=item.pk)
    if locked.status not in allowed:
        raise AnnotationError(
            f"{locked.project.name} #{locked.pk} is {locked.get_status_display().lower()}: "
            "nothing was changed",
            conflict=True,
        )
    return locked


def item_review_accept(*, item: Item, label: str, moderator: User, reason: str) -> Item:
    """Accept an item in review with ``label``; the labelers who gave it and the uploader are
    credited once, when the transaction commits (the rewards app's ``credit_decisions``).

    Raises ``AnnotationError``: no reason, a label outside the project's classes, a task whose
    decision isn't one class (multi-label, boxes, spans), or an item not in review (conflict).
    """
    reason = _reason(reason)
    with transaction.atomic():
        locked = _lock_in_review(item, allowed={Item.Status.REVIEW})
        if locked.project.task not in LABEL_TASKS:
            raise AnnotationError(
                f"{locked.project.get_task_display()}: a moderator can't pick its answer here"
            )
        decided = item_override(item=locked, label=label, moderator=moderator)
        audit_record(
            actor=moderator,
            action="item.review_accept",
            target=decided,
            details={
                "label": label,
                "reason": reason,
                "decision_version": decided.decision_version,
            },
        )
    return decided


def item_reject(*, item: Item, moderator: User, reason: str) -> Item:
    """Reject an item waiting for labels or in review: it is no longer served, decided or sold,
    and nobody is credited for it. An accepted item can't be rejected (its credits may be paid).
    Raises ``AnnotationError``."""
    reason = _reason(reason)
    with transaction.atomic():
        locked = _lock_in_review(item, allowed={Item.Status.REVIEW, Item.Status.OPEN})
        previous = locked.status
        locked.status = Item.Status.REJECTED
        locked.save(update_fields=["status"])
        audit_record(
            actor=moderator,
            action="item.reject",
            target=locked,
            details={"from": previous, "reason": reason},
        )
    return locked


def item_send_back(*, item: Item, moderator: User, reason: str, more_labels: int = 1) -> Item:
    """Send an item in review back to the crowd for ``more_labels`` more labels; the crowd's
    decision then follows the usual rules (and pays as usual). Raises ``AnnotationError``."""
    reason = _reason(reason)
    if more_labels < 1:
        raise AnnotationError("ask for at least one more label")
    with transaction.atomic():
        locked = _lock_in_review(item, allowed={Item.Status.REVIEW})
        previous = locked.required_labels
        locked.status = Item.Status.OPEN
        locked.required_labels = max(locked.required_labels, locked.label_count) + more_labels
        locked.save(update_fields=["status", "required_labels"])
        audit_record(
            actor=moderator,
            action="item.send_back",
            target=locked,
            details={
                "reason": reason,
                "required_labels": {"from": previous, "to": locked.required_labels},
            },
        )
    return locked
