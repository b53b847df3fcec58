"""Celery tasks of the labeling pipeline: thin, take ids, enqueued on commit."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from labeling import services
from labeling.consensus import TORCH_METHODS
from labeling.models import Project
from labeling.services.items import DUE_WAKE_KEY

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
    time_limit=60,
    ignore_result=True,  # nobody reads it: the decision is in the database
)
def decide_item(item_id: int) -> str:
    """Decide an item once it has enough labels. Idempotent: a decided item is left alone."""
    item = services.item_decide(item_id=item_id)
    return item.status


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
    time_limit=120,
    ignore_result=True,
)
def decide_due() -> int:
    """Decide the items in the decisions' queue, in batches (woken by the submits that queue
    them, and by Celery beat). Clears the wake-up key first: a submit that finds it set has
    committed before this task looks at the queue. Idempotent; concurrent runs split the queue.
    Hands over to a new task when its time budget is spent."""
    try:
        cache.delete(DUE_WAKE_KEY)
    except Exception:  # the cache (Redis) is down: the wake-ups aren't deduplicated meanwhile
        logger.warning("decision wake-up key unavailable", exc_info=True)
    taken, more = services.items_decide_due()
    if more:
        decide_due.delay()
    return taken


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def refit_project(project_id: int, device: str = "cpu") -> dict[str, object] | None:
    """Full EM over a project's labels; re-decides the items still waiting."""
    fit = services.project_refit(project_id=project_id, device=device)
    if fit is None:
        return None
    return {
        "labels": fit.label_count,
        "iterations": fit.iterations,
        "seconds": fit.seconds,
        "device": fit.device,
    }


def refit_route(project: Project, label_count: int) -> tuple[str, str]:
    """The queue and device for a project's refit: large projects leave the default queue."""
    if label_count < settings.CONSENSUS_LARGE_PROJECT_LABELS:
        return settings.CELERY_TASK_DEFAULT_QUEUE, "cpu"
    if settings.CONSENSUS_GPU_WORKERS and project.consensus_method in TORCH_METHODS:
        return "consensus-gpu", "cuda"
    return "consensus", "cpu"


@shared_task(acks_late=True, time_limit=120)
def review_stalled_items() -> int:
    """Celery beat: open items that can't get their next label go to the review queue."""
    return services.items_review_stalled()


@shared_task(acks_late=True, time_limit=120)
def refit_projects() -> int:
    """Celery beat: enqueue a refit of every open project that has labels, on its queue."""
    projects = Project.objects.filter(is_open=True).annotate(labels=Count("items__annotations"))
    queued = 0
    for project in projects:
        if project.labels == 0:
            continue
        queue, device = refit_route(project, project.labels)
        refit_project.apply_async(args=(project.pk, device), queue=queue)
        queued += 1
    return queued
