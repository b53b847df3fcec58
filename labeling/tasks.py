"""Celery tasks of the labeling pipeline: thin, take ids, enqueued on commit."""

from __future__ import annotations

from celery import shared_task

from labeling import services


@shared_task(
    acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5, time_limit=60
)
def decide_item(item_id: int) -> str:
    """Decide an item once it has enough labels. Idempotent: a decided item is left alone."""
    item = services.item_decide(item_id=item_id)
    return item.status
