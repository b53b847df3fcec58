"""Queuing a Celery task when the broker (Redis) may be down.

Tasks are queued after the work that asks for them has committed (``transaction.on_commit``):
a broker error raised there was a 500 for a request whose work was done (a sign-up, a label, a
ban), and it skipped the commit's later callbacks (an admin action banning several people
stopped after the first). ``task_send`` logs and counts the error instead (``/metrics``:
``crowdmint_tasks_not_queued_total``) and what the task would have done is done by a durable
way round, which each caller names:

- a periodic sweep that finds the work in the database (decisions: ``decide-due-items``; their
  credits: ``credit-pending-decisions``; the fraud checks: ``fraud-scan``), or
- ``run_here=True``: the task runs in this process now (the rechecks after a ban or a flag, the
  reversal of a withdrawn gold answer's bonus), as nothing else would redo it.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from kombu.exceptions import OperationalError

from config.celery import app
from config.metrics import TASKS_NOT_QUEUED

logger = logging.getLogger(__name__)


def task_send(
    name: str,
    *,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    countdown: float | None = None,
    run_here: bool = False,
) -> bool:
    """Queue the task ``name`` (by name); returns whether it was queued. When the broker can't
    be reached, nothing is raised: with ``run_here`` the task runs in this process (its errors
    logged), else its periodic sweep does the work later. The task's result is not kept."""
    # The task itself, not its name: a name this process hasn't imported is sent to the broker
    # even under eager Celery (the demo), where nothing reads it.
    import_module(name.rpartition(".")[0])
    task = app.tasks[name]
    try:
        # No result kept: nothing reads it, and a publisher that keeps one subscribes to it in
        # Redis first, which on a dead Redis retried for 20 seconds before the broker's error.
        task.apply_async(args, kwargs or {}, countdown=countdown, ignore_result=True)  # type: ignore[arg-type]  # None: no countdown
    except OperationalError:
        TASKS_NOT_QUEUED.labels(task=name).inc()
        if not run_here:
            logger.warning("broker unreachable: %s not queued, its sweep does it", name)
            return False
        logger.warning("broker unreachable: %s runs in this process", name)
        result = task.apply(args=args, kwargs=kwargs or {})
        if result.failed():
            logger.error("%s failed in this process: %r", name, result.result)
        return False
    return True
