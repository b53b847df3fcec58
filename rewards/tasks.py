"""Celery tasks for payouts; Celery beat runs ``settle_rewards`` every SETTLE_INTERVAL_SECONDS."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from rewards.client import chain_client_with_token
from rewards.reconcile import reconciliation_record
from rewards.services import (
    decision_credit,
    decisions_credit,
    decisions_credit_pending,
    gold_answer_credit,
    gold_answer_reverse,
    gold_answers_credit_pending,
    gold_bonuses_reverse_owed,
    gold_item_bonuses_settle,
    gold_items_settle_changed,
    payouts_settle,
)

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=900, soft_time_limit=840)
def settle_rewards() -> dict[str, list[str]]:
    """Pay due credits. Safe to run concurrently with itself or after a crash."""
    report = payouts_settle(client=chain_client_with_token())
    return {
        "confirmed": report.confirmed,
        "pending": report.pending,
        "failed": report.failed,
        "awaiting_approval": report.awaiting_approval,
    }


@shared_task(acks_late=True, time_limit=900, soft_time_limit=840)
def reconcile_payouts() -> bool:
    """Check the payout invariants against the chain; a failing run is an alert in admin."""
    since = timezone.now() - timedelta(days=settings.RECONCILE_WINDOW_DAYS)
    run = reconciliation_record(client=chain_client_with_token(), since=since)
    return run.ok


@shared_task(
    acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=8, time_limit=120
)
def credit_decision(decision_id: int) -> int:
    """Turn a recorded decision into ledger entries (enqueued by labeling on commit); safe to
    run twice: a credited decision writes nothing."""
    return decision_credit(decision_id=decision_id)


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=8,
    time_limit=120,
    ignore_result=True,
)
def credit_decisions(decision_ids: list[int]) -> int:
    """Turn the decisions of one batch into ledger entries (enqueued by labeling on commit);
    safe to run twice: a credited decision writes nothing."""
    return decisions_credit(decision_ids=decision_ids)


@shared_task(
    acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=8, time_limit=60
)
def credit_gold_answer(annotation_id: int) -> bool:
    """The gold bonus of one answer (enqueued by labeling on commit); once per answer."""
    return gold_answer_credit(annotation_id=annotation_id)


@shared_task(
    acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=8, time_limit=60
)
def reverse_gold_answer(annotation_id: int) -> bool:
    """Cancel the gold bonus of a withdrawn answer (enqueued by labeling on commit); once."""
    return gold_answer_reverse(annotation_id=annotation_id)


@shared_task(
    acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=8, time_limit=60
)
def reverse_gold_bonuses(item_id: int) -> int:
    """Settle an item's gold bonuses after a moderator changed its gold answer (enqueued by
    labeling on commit): reverse those the change made undeserved, and credit the right answers
    with none standing (``gold_item_bonuses_settle``); once each. Returns how many it reversed."""
    reversed_, _ = gold_item_bonuses_settle(item_id=item_id)
    return reversed_


@shared_task(acks_late=True, time_limit=900, soft_time_limit=840)
def credit_pending_decisions() -> int:
    """Celery beat: credit any decision, and any gold answer's bonus, whose task was lost (a
    broker outage at commit), settle the bonuses of the items whose gold answer changed
    recently (their settling task lost: an old answer right again after a fix is paid again),
    and write any gold bonus reversal owed (a task lost, or a crash before it ran). Returns how
    many credits it wrote (reversals are logged)."""
    credited = decisions_credit_pending() + gold_answers_credit_pending()
    settled_reversed, settled_credited = gold_items_settle_changed()
    credited += settled_credited
    reversed_ = settled_reversed + gold_bonuses_reverse_owed()
    if reversed_:
        logger.warning("wrote %d gold bonus reversal(s) owed", reversed_)
    return credited
