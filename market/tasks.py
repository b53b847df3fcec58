"""Celery tasks for datasets: thin, take ids, enqueued on commit."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from market.services import exports, imports


@shared_task(
    acks_late=True,
    time_limit=settings.DATASET_EXPORT_TIME_LIMIT_SECONDS,
    soft_time_limit=settings.DATASET_EXPORT_TIME_LIMIT_SECONDS - 60,
)
def build_export(export_id: int) -> str:
    """Build an export. Safe to run twice: the second finds it claimed or done."""
    return exports.export_build(export_id=export_id).status


@shared_task
def expire_exports() -> int:
    return exports.exports_expire()


@shared_task(
    acks_late=True,
    time_limit=settings.DATASET_EXPORT_TIME_LIMIT_SECONDS,
    soft_time_limit=settings.DATASET_EXPORT_TIME_LIMIT_SECONDS - 60,
)
def run_import(import_id: int) -> str:
    """Import a moderator's file of items. Safe to run twice (claimed once; an abandoned run
    taken over after the time limit)."""
    return imports.import_run(import_id=import_id).status


@shared_task
def fail_abandoned_imports() -> int:
    return imports.imports_fail_abandoned()
