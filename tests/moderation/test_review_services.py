"""The review queue's services: accept with a chosen label (credited once), reject, send back;
each needs a reason, locks the item and is audited."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, User
from labeling.models import Decision, Item
from labeling.services import AnnotationError
from labeling.services.review import item_reject, item_review_accept, item_send_back
from rewards.models import LedgerEntry
from tests.moderation.conftest import committed

pytestmark = pytest.mark.django_db


def test_accepting_with_a_label_credits_the_agreeing_labelers_and_the_uploader_once(
    review_item: Item, moderator: User, uploader: User, labelers: list[User]
) -> None:
    committed(
        lambda: item_review_accept(
            item=review_item, label="positive", moderator=moderator, reason="clearly positive"
        )
    )
    review_item.refresh_from_db()
    assert (review_item.status, review_item.decided_label) == ("accepted", "positive")
    credited = sorted(LedgerEntry.objects.values_list("user_id", "reason", "amount"))
    assert credited == sorted(
        [
            (uploader.pk, "contribution", 25),
            (labelers[0].pk, "label", 10),
            (labelers[1].pk, "label", 10),
        ]
    )
    event = AuditEvent.objects.get(action="item.review_accept")
    assert event.actor == moderator
    assert event.details == {
        "label": "positive",
        "reason": "clearly positive",
        "decision_version": 1,
    }

    with pytest.raises(AnnotationError, match="accepted: nothing was changed"):
        committed(
            lambda: item_review_accept(
                item=review_item, label="negative", moderator=moderator, reason="again"
            )
        )
    assert LedgerEntry.objects.count() == 3
    assert Decision.objects.filter(item=review_item).count() == 1


def test_a_reason_and_a_known_class_are_required(review_item: Item, moderator: User) -> None:
    with pytest.raises(AnnotationError, match="give a reason"):
        item_review_accept(item=review_item, label="positive", moderator=moderator, reason=" ")
    with pytest.raises(AnnotationError, match="unknown class"):
        item_review_accept(item=review_item, label="banana", moderator=moderator, reason="x")
    review_item.refresh_from_db()
    assert review_item.status == "review"
    assert not AuditEvent.objects.filter(action__startswith="item.review").exists()


def test_rejecting_credits_nobody_and_is_audited(review_item: Item, moderator: User) -> None:
    committed(lambda: item_reject(item=review_item, moderator=moderator, reason="spam"))
    review_item.refresh_from_db()
    assert review_item.status == Item.Status.REJECTED
    assert not LedgerEntry.objects.exists()
    event = AuditEvent.objects.get(action="item.reject")
    assert event.details == {"from": "review", "reason": "spam"}
    with pytest.raises(AnnotationError, match="rejected"):
        item_reject(item=review_item, moderator=moderator, reason="spam")


def test_sending_back_asks_the_crowd_for_one_more_label(review_item: Item, moderator: User) -> None:
    item_send_back(item=review_item, moderator=moderator, reason="unclear, ask again")
    review_item.refresh_from_db()
    assert (review_item.status, review_item.required_labels) == ("open", 4)
    event = AuditEvent.objects.get(action="item.send_back")
    assert event.details["required_labels"] == {"from": 3, "to": 4}
    with pytest.raises(AnnotationError, match="collecting labels"):
        item_send_back(item=review_item, moderator=moderator, reason="again")
    assert not LedgerEntry.objects.exists()
