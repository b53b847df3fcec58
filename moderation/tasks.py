"""Celery tasks of moderation: the fraud scan (beat), the checks after answers and sign-ins, and
rechecking a contributor's items after a ban or a flag."""

from __future__ import annotations

from celery import shared_task

from moderation import services


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def fraud_scan() -> str:
    """Celery beat (``FRAUD_SCAN_SECONDS``): every fraud check on every open project."""
    return services.fraud_scan().summary


@shared_task(acks_late=True, time_limit=300, ignore_result=True)
def sybil_scan() -> dict[str, int]:
    """After an account's first sign-in: new accounts arriving in a cluster."""
    return services.sybil_scan()


@shared_task(acks_late=True, time_limit=120, ignore_result=True)
def check_answers(user_id: int) -> int:
    """After answers: the checks on one contributor's latest answers."""
    return len(services.answer_check(user_id=user_id))


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
    time_limit=1800,
    ignore_result=True,
)
def recheck_user(
    user_id: int, reason: str, project_id: int | None = None, hold_only: bool = False
) -> dict[str, int]:
    """After a ban, an unban, or a flag raised or dismissed: decide the contributor's unpaid
    items again with the answers that count now (those of ``project_id``, of the projects that
    hold flagged answers with ``hold_only``). Idempotent."""
    return services.user_recheck(
        user_id=user_id, reason=reason, project_id=project_id, hold_only=hold_only
    )
